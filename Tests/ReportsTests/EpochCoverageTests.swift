import Store
import Testing
@testable import Reports

@Test func sessionStartingMidEpochCoversPartOfIt() throws {
    // Window t0 ..< t0+15m in 5m epochs; the recorder starts at t0+7m30s.
    let start = t0 + 7 * minute + 30 * second
    let probes = (0..<8).map { ProbeRecord(sentNs: start + Int64($0) * minute, targetID: 1, rttNs: 10 * millisecond) }
    let input = ReportInput(
        targets: [router], sessions: [makeSession(start: start, stopped: t0 + 15 * minute, interval: minute)],
        sessionTargets: [SessionTargetRecord(sessionID: 1, targetID: 1, offsetNs: 0)], probes: probes)
    let report = try makeReport(input, options(to: t0 + 15 * minute, epoch: 5 * minute))
    let epochs = report.targets[0].epochs
    #expect(epochs.map(\.summary.coverage) == [0, 0.5, 1])
    #expect(epochs.map(\.summary.sent) == [0, 3, 5])
    // Before the recorder started: no data, never loss.
    #expect(epochs[0].summary.hasNoData)
    #expect(epochs[0].summary.lossPct == nil)
    #expect(isClose(epochs[1].summary.lossPct, 0))
    #expect(isClose(report.targets[0].summary.coverage, 0.5))
}

@Test func gapMakesAnEpochNoData() throws {
    // Probes at :30 of every minute, except the stall from t0+5m to t0+10m.
    let session = makeSession(start: t0, stopped: t0 + 15 * minute, interval: minute)
    let probes = (0..<15).filter { $0 < 5 || $0 >= 10 }
        .map { ProbeRecord(sentNs: t0 + Int64($0) * minute + 30 * second, targetID: 1) }
    let input = ReportInput(
        targets: [router], sessions: [session],
        sessionTargets: [SessionTargetRecord(sessionID: 1, targetID: 1, offsetNs: 0)],
        gaps: [GapRecord(sessionID: 1, startNs: t0 + 5 * minute, endNs: t0 + 10 * minute, reason: .stalled),
               // Another session's gap does not touch this target.
               GapRecord(sessionID: 2, startNs: t0, endNs: t0 + 15 * minute, reason: .dropped)],
        probes: probes)
    let report = try makeReport(input, options(to: t0 + 15 * minute, epoch: 5 * minute))
    let epochs = report.targets[0].epochs
    #expect(epochs.map(\.summary.coverage) == [1, 0, 1])
    #expect(epochs.map(\.summary.sent) == [5, 0, 5])
    #expect(epochs[1].summary.lossPct == nil)
    #expect(isClose(epochs[0].summary.lossPct, 100))
    #expect(isClose(report.targets[0].summary.coverage, 2.0 / 3))
}

@Test func epochsAlignToUnixTimeAndAreCutToTheWindow() throws {
    let input = ReportInput(targets: [router])
    let cut = try makeReport(input, options(from: t0 + 2 * minute, to: t0 + 13 * minute, epoch: 5 * minute))
    let bounds = cut.targets[0].epochs.map { [$0.start, $0.end] }
    #expect(bounds == [[t0 + 2 * minute, t0 + 5 * minute], [t0 + 5 * minute, t0 + 10 * minute],
                       [t0 + 10 * minute, t0 + 13 * minute]])
    // Every epoch is listed even without any data.
    #expect(cut.targets[0].epochs.allSatisfy { $0.summary.hasNoData && $0.summary.coverage == 0 })

    let aligned = try makeReport(input, options(from: t0, to: t0 + 10 * minute, epoch: 5 * minute))
    #expect(aligned.targets[0].epochs.map(\.start) == [t0, t0 + 5 * minute])
    let none = try makeReport(input, options(from: t0, to: t0 + 10 * minute))
    #expect(none.targets[0].epochs.isEmpty)
}

@Test func probesFallIntoTheirEpochByHalfOpenBounds() throws {
    let input = singleTargetInput(length: 20 * second,
                                  probes: [probe(0, rttMs: 1), probe(4.999, rttMs: 1), probe(5, rttMs: 1), probe(9, rttMs: 1)])
    let report = try makeReport(input, options(to: t0 + 10 * second, epoch: 5 * second))
    #expect(report.targets[0].epochs.map(\.summary.sent) == [2, 2])
}

@Test func emptyWindowAndBadOptionsAreErrors() {
    let input = ReportInput(targets: [router])
    #expect(throws: ReportError.self) { try makeReport(input, options(from: t0, to: t0)) }
    #expect(throws: ReportError.self) { try makeReport(input, options(timeout: 0)) }
    #expect(throws: ReportError.self) { try makeReport(input, options(epoch: 0)) }
    #expect(throws: ReportError.self) { try makeReport(input, options(outageMin: 0)) }
}
