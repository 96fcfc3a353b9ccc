import Glibc
import Store
import Testing
@testable import Reports

/// One session, 1 s interval. Lost: 3...7 (an error and a late reply among
/// them), 9...10, 12...14; then a stall from 15 to 20; lost 20...21.
private let outageInput: ReportInput = {
    let lost: Set<Int> = [3, 4, 5, 6, 7, 9, 10, 12, 13, 14, 20, 21]
    let sent = Array(0..<15) + [20, 21, 22]
    var probes = sent.map { lost.contains($0) ? probe(Double($0)) : probe(Double($0), rttMs: 10) }
    probes[3].sendError = ENETUNREACH
    var input = singleTargetInput(probes: probes, replies: [reply(4, rttMs: 3000)])
    input.gaps = [GapRecord(sessionID: 1, startNs: at(15), endNs: at(20), reason: .stalled)]
    return input
}()

@Test func outagesNeedTheMinimumRunAndEndAtTheNextProbeOrOneIntervalOn() throws {
    let outages = try makeReport(outageInput, options(outageMin: 3)).targets[0].outages
    #expect(outages == [
        // The next probe (t0+8 s) answered: the outage ends when it was sent.
        Outage(start: at(3), end: at(8), lost: 5),
        // The next probe came after the stall: end is the last lost + one interval.
        Outage(start: at(12), end: at(15), lost: 3),
    ])
    #expect(isClose(outages[0].seconds, 5))
}

@Test func aRecorderGapSplitsARun() throws {
    let outages = try makeReport(outageInput, options(outageMin: 2)).targets[0].outages
    #expect(outages.map(\.lost) == [5, 2, 3, 2])
    #expect(outages[1] == Outage(start: at(9), end: at(11), lost: 2))
    #expect(outages[3] == Outage(start: at(20), end: at(22), lost: 2))
}

@Test func aRestartSplitsARunEvenWhenTheProbesAreOneIntervalApart() throws {
    let input = ReportInput(
        targets: [router],
        sessions: [makeSession(id: 1, start: t0, stopped: at(10)), makeSession(id: 2, start: at(10), stopped: at(100))],
        sessionTargets: [SessionTargetRecord(sessionID: 1, targetID: 1, offsetNs: 0),
                         SessionTargetRecord(sessionID: 2, targetID: 1, offsetNs: 0)],
        probes: [probe(6, rttMs: 5), probe(7), probe(8), probe(10), probe(11), probe(12, rttMs: 5)])
    #expect(try makeReport(input, options(outageMin: 3)).targets[0].outages.isEmpty)
    let outages = try makeReport(input, options(outageMin: 2)).targets[0].outages
    #expect(outages == [Outage(start: at(7), end: at(9), lost: 2), Outage(start: at(10), end: at(12), lost: 2)])
}

@Test func unknownProbesBreakARun() throws {
    // Crash: heartbeat at t0+10 s; with a 5 s timeout probes after t0+5 s are unknown.
    let input = ReportInput(
        targets: [router], sessions: [makeSession(start: t0, stopped: nil, heartbeat: at(10))],
        sessionTargets: [SessionTargetRecord(sessionID: 1, targetID: 1, offsetNs: 0)],
        probes: (0..<10).map { probe(Double($0)) })
    let report = try makeReport(input, options(timeout: 5 * second, outageMin: 3))
    #expect(report.targets[0].outages == [Outage(start: t0, end: at(6), lost: 6)])
    #expect(report.targets[0].summary.unknown == 4)
}
