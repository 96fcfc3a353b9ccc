import Store
import Testing
@testable import Reports

/// Not a timing assertion: prints how long a day of 10 targets at 1 s takes,
/// and checks the counts so the work cannot be skipped.
@Test func scaleCheckOneDayOfTenTargets() throws {
    let day: Nanoseconds = 86_400 * second
    let targets = (1...10).map { TargetRecord(id: Int64($0), name: "t\($0)", host: "10.0.0.\($0)") }
    var probes: [ProbeRecord] = []
    probes.reserveCapacity(864_000)
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    var lost = 0
    var replies: [ReplyRecord] = []
    var icmpErrors: [ICMPErrorRecord] = []
    for slot in 0..<86_400 {
        for target in targets {
            // xorshift: a deterministic ~1 % loss and rtts between 5 and 25 ms.
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            let isLost = state % 100 == 0
            if isLost { lost += 1 }
            let sent = t0 + Int64(slot) * second + target.id * 10 * millisecond
            // Some replies rows (duplicates) and ICMP errors, so lookups are not all misses.
            if state % 500 == 1 { replies.append(ReplyRecord(sentNs: sent, targetID: target.id, rttNs: 30 * millisecond)) }
            if isLost && state % 3 == 0 {
                icmpErrors.append(ICMPErrorRecord(sentNs: sent, targetID: target.id, rttNs: millisecond,
                                                  family: 4, type: 3, code: 1, source: "10.0.0.254"))
            }
            probes.append(ProbeRecord(sentNs: sent, targetID: target.id,
                                      rttNs: isLost ? nil : 5 * millisecond + Int64(state % 20_000_000)))
        }
    }
    let input = ReportInput(
        targets: targets, sessions: [makeSession(start: t0, stopped: t0 + day + minute)],
        sessionTargets: targets.map { SessionTargetRecord(sessionID: 1, targetID: $0.id, offsetNs: $0.id * 10 * millisecond) },
        probes: probes, replies: replies, icmpErrors: icmpErrors)
    let clock = ContinuousClock()
    var report: Report?
    let elapsed = try clock.measure {
        report = try makeReport(input, options(from: t0, to: t0 + day, epoch: 5 * minute))
    }
    let targetReports = try #require(report).targets
    #expect(targetReports.map(\.summary.sent).reduce(0, +) == 864_000)
    #expect(targetReports.map(\.summary.lost).reduce(0, +) == lost)
    #expect(targetReports.allSatisfy { $0.epochs.count == 288 })
    #expect(targetReports.map(\.summary.duplicates).reduce(0, +) == replies.count)
    #expect(targetReports.map(\.summary.errors).reduce(0, +) == icmpErrors.count)
    print("scale check: makeReport over 864,000 probes (10 targets x 24 h, 5 m epochs) took \(elapsed)")
    let json = render(try #require(report), as: .json, color: false)
    print("scale check: \(json.utf8.count) bytes of JSON in \(clock.measure { _ = render(report!, as: .json, color: false) })")
}
