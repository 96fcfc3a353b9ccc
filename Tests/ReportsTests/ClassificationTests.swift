import Glibc
import Store
import Testing
@testable import Reports

/// p0 answered in 10 ms, p1 in 3 s (a reply row), p2 never, p3 in 20 ms,
/// p4 never and 2 s before the session stopped at t0+100 s.
private let timeoutInput = singleTargetInput(
    probes: [probe(0, rttMs: 10), probe(1), probe(2), probe(3, rttMs: 20), probe(98)],
    replies: [reply(1, rttMs: 3000)])

@Test func timeoutOfTwoSecondsMakesTheSlowReplyLate() throws {
    let s = try summary(timeoutInput, options(timeout: 2 * second))
    #expect((s.sent, s.received, s.lost, s.late, s.unknown) == (5, 2, 3, 1, 0))
    #expect(isClose(s.lossPct, 60))
}

@Test func longTimeoutReceivesTheSlowReplyAndLeavesTheLastProbeUnknown() throws {
    // t0+98 s + 5 s runs past the session's stop at t0+100 s: nobody waited that long.
    let s = try summary(timeoutInput, options(timeout: 5 * second))
    #expect((s.sent, s.received, s.lost, s.late, s.unknown) == (5, 3, 1, 0, 1))
    #expect(isClose(s.lossPct, 25))
}

@Test func shortTimeoutMakesBothSlowRepliesLate() throws {
    let s = try summary(timeoutInput, options(timeout: 15 * millisecond))
    #expect((s.sent, s.received, s.lost, s.late, s.unknown) == (5, 1, 4, 2, 0))
    #expect(isClose(s.lossPct, 80))
}

@Test func duplicatesCountEveryReplyBeyondTheFirstRegardlessOfTimeout() throws {
    let input = singleTargetInput(
        probes: [probe(0, rttMs: 10), probe(1), probe(2, rttMs: 30)],
        replies: [reply(0, rttMs: 12), reply(0, rttMs: 15), reply(1, rttMs: 3000), reply(1, rttMs: 4000),
                  reply(2, rttMs: 25)])
    let s = try summary(input, options())
    #expect((s.received, s.late, s.duplicates) == (2, 1, 4))
    // The first reply is the smallest rtt, even when it is a reply row.
    #expect(isClose(s.rtt.min, 10))
    #expect(isClose(s.rtt.max, 25))
}

@Test func sendAndICMPErrorsAreLostErrorsButAReplyInTimeWins() throws {
    let input = singleTargetInput(
        probes: [probe(0, sendError: ENETUNREACH), probe(1, sendError: sendErrorUnresolved), probe(2),
                 probe(3), probe(4), probe(5, sendError: 999)],
        replies: [reply(3, rttMs: 40), reply(4, rttMs: 3000)],
        icmpErrors: [
            // Two errors for p2: the one with the smaller rtt names it.
            ICMPErrorRecord(sentNs: at(2), targetID: 1, rttNs: 9 * millisecond, family: 4, type: 11, code: 0, source: "10.0.0.9"),
            ICMPErrorRecord(sentNs: at(2), targetID: 1, rttNs: 5 * millisecond, family: 4, type: 3, code: 1, source: "10.0.0.1"),
            ICMPErrorRecord(sentNs: at(3), targetID: 1, rttNs: 5 * millisecond, family: 4, type: 3, code: 0, source: "10.0.0.1"),
            ICMPErrorRecord(sentNs: at(4), targetID: 1, rttNs: 5 * millisecond, family: 6, type: 1, code: 0, source: "fe80::1"),
        ])
    let s = try summary(input, options())
    #expect((s.sent, s.received, s.lost, s.late, s.errors, s.unknown) == (6, 1, 5, 1, 5, 0))
    #expect(s.errorKinds == ["ENETUNREACH": 1, "unresolved": 1, "host-unreachable": 1, "no-route": 1, "errno 999": 1])
}

@Test func crashedRecorderLeavesItsLastProbesUnknown() throws {
    // No clean stop: the last sign of life is the heartbeat at t0+10 s.
    var probes = (0..<7).map { probe(Double($0), rttMs: 10) }
    probes += [probe(7), probe(8), probe(9)]
    let input = ReportInput(
        targets: [router], sessions: [makeSession(start: t0, stopped: nil, heartbeat: t0 + 10 * second)],
        sessionTargets: [SessionTargetRecord(sessionID: 1, targetID: 1, offsetNs: 0)], probes: probes)
    let long = try summary(input, options(to: t0 + 20 * second, timeout: 5 * second))
    #expect((long.sent, long.received, long.lost, long.unknown) == (10, 7, 0, 3))
    #expect(isClose(long.lossPct, 0))
    #expect(isClose(long.coverage, 0.5))
    // With 2 s only t0+9 s (9 + 2 > 10) is unknown; t0+8 s had its full 2 s.
    let short = try summary(input, options(to: t0 + 20 * second, timeout: 2 * second))
    #expect((short.lost, short.unknown) == (2, 1))
}

@Test(arguments: [
    (Int32(ENETUNREACH), "ENETUNREACH"), (Int32(EHOSTUNREACH), "EHOSTUNREACH"), (Int32(ENETDOWN), "ENETDOWN"),
    (Int32(EACCES), "EACCES"), (Int32(EPERM), "EPERM"), (Int32(ENOBUFS), "ENOBUFS"),
    (Int32(EMSGSIZE), "EMSGSIZE"), (Int32(EADDRNOTAVAIL), "EADDRNOTAVAIL"), (Int32(EINVAL), "EINVAL"),
    (-1, "unresolved"), (Int32(ENOENT), "errno \(ENOENT)"),
])
func sendErrorNames(errno: Int32, name: String) {
    #expect(sendErrorKind(errno) == name)
}

@Test func icmpErrorNames() {
    let cases: [(Int, UInt8, UInt8, String)] = [
        (4, 3, 0, "net-unreachable"), (4, 3, 1, "host-unreachable"), (4, 3, 2, "protocol-unreachable"),
        (4, 3, 3, "port-unreachable"), (4, 3, 4, "fragmentation-needed"), (4, 3, 9, "admin-prohibited"),
        (4, 3, 10, "admin-prohibited"), (4, 3, 13, "admin-prohibited"), (4, 3, 7, "unreachable code 7"),
        (4, 11, 0, "ttl-exceeded"), (4, 11, 1, "reassembly-timeout"), (4, 12, 0, "parameter-problem"),
        (4, 4, 0, "source-quench"), (4, 5, 1, "icmp type 5 code 1"), (4, 11, 2, "icmp type 11 code 2"),
        (6, 1, 0, "no-route"), (6, 1, 1, "admin-prohibited"), (6, 1, 3, "address-unreachable"),
        (6, 1, 4, "port-unreachable"), (6, 1, 5, "unreachable code 5"), (6, 2, 0, "packet-too-big"),
        (6, 3, 0, "hop-limit-exceeded"), (6, 4, 1, "parameter-problem"), (6, 131, 0, "icmp type 131 code 0"),
    ]
    for (family, type, code, name) in cases {
        #expect(icmpErrorKind(family: family, type: type, code: code) == name, "family \(family) type \(type) code \(code)")
    }
}
