// pingem watch's frame from hand-made snapshots, and the snapshot from
// hand-made inputs: widths, plain text, the strip's cells, the outage marker.
import Foundation
import Store
import Testing
@testable import Reports
import TestSupport

private let utc = TimeZone(identifier: "UTC")!

/// A one-minute epoch starting `m` minutes after t0 with these counts.
private func epoch(_ m: Int, sent: Int, lost: Int = 0, p50: Double? = nil) -> Epoch {
    var s = Summary()
    s.sent = sent; s.lost = lost; s.received = sent - lost
    s.lossPct = sent > 0 ? Double(lost) / Double(sent) * 100 : nil
    s.rtt.p50 = p50; s.rtt.p90 = p50
    return Epoch(start: t0 + Nanoseconds(m) * minute, end: t0 + Nanoseconds(m + 1) * minute, summary: s)
}

private func summaryOf(loss: Double, p50: Double, p90: Double) -> Summary {
    var s = Summary()
    s.sent = 100; s.lost = Int(loss); s.received = 100 - s.lost; s.lossPct = loss
    s.rtt.p50 = p50; s.rtt.p90 = p90
    return s
}

/// router: 60 minutes: 10 fast, 5 without data, 1 with some loss, 1 all lost, 43 at 20 ms.
/// wan: in an outage for the last 135 s.
private func handMadeSnapshot() -> WatchSnapshot {
    var epochs: [Epoch] = []
    for m in 0..<10 { epochs.append(epoch(m, sent: 60, p50: 0.5)) }
    for m in 10..<15 { epochs.append(epoch(m, sent: 0)) }
    epochs.append(epoch(15, sent: 60, lost: 6, p50: 3))
    epochs.append(epoch(16, sent: 60, lost: 60))
    for m in 17..<60 { epochs.append(epoch(m, sent: 60, p50: 20)) }
    let now = t0 + 60 * minute - second
    return WatchSnapshot(now: now, targets: [
        WatchTarget(label: "router", lastRTT: 12.34, minute: summaryOf(loss: 0, p50: 20.1, p90: 25.5),
                    hour: summaryOf(loss: 2.5, p50: 18, p90: 24), epochs: epochs),
        WatchTarget(label: "wan", lastLost: true, minute: summaryOf(loss: 100, p50: 30, p90: 31),
                    hour: summaryOf(loss: 4, p50: 30, p90: 40), epochs: epochs, outageSince: now - 135 * second),
    ])
}

private func stripOf(_ line: String) -> String? {
    guard let open = line.firstIndex(of: "|"), let close = line.lastIndex(of: "|"), open < close else { return nil }
    return String(line[line.index(after: open)..<close])
}

private func visibleWidth(_ line: String) -> Int {
    line.replacingOccurrences(of: "\u{1B}\\[[0-9;?]*[A-Za-z]", with: "", options: .regularExpression).count
}

@Test func watchFrameAt120ColumnsShowsEveryColumnAndTheRecentStrip() {
    let lines = Watch.frame(handMadeSnapshot(), WatchFrameOptions(width: 120, source: "/x.db", timeZone: utc))
    #expect(lines[0] == "pingem watch  21:59:59  /x.db")
    #expect(lines[1] == "target    last  1m p50/p90   loss  1h p50/p90   loss  last 37m" + String(repeating: " ", count: 31) + "outage")
    #expect(lines.allSatisfy { $0.count <= 120 })
    let router = lines[2]
    #expect(router == "router  12.3ms 20.1/25.5ms     0% 18.0/24.0ms   2.5% |" + String(repeating: "*", count: 37) + "|")
    let wan = lines[3]
    #expect(wan.hasPrefix("wan       lost 30.0/31.0ms   100% 30.0/40.0ms   4.0% |"))
    #expect(wan.hasSuffix("| OUTAGE 2m15s since 21:57:44"))
    #expect(lines.last!.hasPrefix("strip: 1 cell = 1 min"))
}

@Test func watchFrameWideEnoughShowsTheWholeHourWithGapAndLoss() {
    let lines = Watch.frame(handMadeSnapshot(), WatchFrameOptions(width: 160, timeZone: utc))
    // 10 fast cells, a 5-minute blank gap, some loss, all lost, then 20 ms (the "*" shade: 16..32 ms).
    #expect(stripOf(lines[2]) == String(repeating: ".", count: 10) + "     " + "xX" + String(repeating: "*", count: 43))
    #expect(!lines[2].contains("OUTAGE"))
}

@Test func watchFrameAt60ColumnsDropsLatencyColumnsBeforeTheStrip() {
    let lines = Watch.frame(handMadeSnapshot(), WatchFrameOptions(width: 60, timeZone: utc))
    #expect(lines.allSatisfy { $0.count <= 60 })
    #expect(!lines[1].contains("p50/p90"))
    // Label, last RTT and the last minute's loss always stay; the strip gets the rest.
    #expect(lines[2] == "router  12.3ms     0% |" + String(repeating: "*", count: 8) + "|")
    #expect(lines[3] == "wan       lost   100% |" + String(repeating: "*", count: 8) + "| OUTAGE 2m15s since 21:57:44")
    // Without an outage the hour's loss and the last minute's latency come back.
    var calm = handMadeSnapshot()
    calm.targets[1].outageSince = nil
    let calmLines = Watch.frame(calm, WatchFrameOptions(width: 60, timeZone: utc))
    #expect(calmLines[2] == "router  12.3ms 20.1/25.5ms     0%   2.5% |" + String(repeating: "*", count: 17) + "|")
}

@Test func watchFramePlainHasNoEscapesAndColorKeepsTheWidth() {
    let snapshot = handMadeSnapshot()
    let plain = Watch.frame(snapshot, WatchFrameOptions(width: 120, color: false, timeZone: utc))
    #expect(!plain.joined().contains("\u{1B}"))
    #expect(plain.joined().unicodeScalars.allSatisfy { $0.isASCII })
    let colored = Watch.frame(snapshot, WatchFrameOptions(width: 90, color: true, timeZone: utc))
    #expect(colored.joined().contains("\u{1B}[31m"))
    #expect(colored.allSatisfy { visibleWidth($0) <= 90 })
    #expect(colored[2].contains("▆"))
}

@Test func watchFrameWithoutTargetsSaysWhatToDo() {
    let lines = Watch.frame(WatchSnapshot(now: t0, targets: []), WatchFrameOptions(width: 60, timeZone: utc))
    #expect(lines.count == 2)
    #expect(lines[1].hasPrefix("No probes in the last hour"))
    #expect(lines[1].count <= 60)
}

@Test func watchSpanAndShades() {
    #expect(Watch.span(45 * second) == "45s")
    #expect(Watch.span(125 * second) == "2m05s")
    #expect(Watch.span(3720 * second) == "1h02m")
    #expect(Watch.shadeLevel(0.9) == 0)
    #expect(Watch.shadeLevel(1.5) == 1)
    #expect(Watch.shadeLevel(64) == 6)
    #expect(Watch.shadeLevel(65) == 7)
}

// MARK: - Snapshot from input

/// router probed every second for 100 s from t0 by a session still running;
/// probes from `lostFrom` on are lost.
private func liveInput(lostFrom: Int) -> ReportInput {
    let probes = (0..<100).map { k in probe(Double(k), rttMs: k < lostFrom ? 10 + Double(k % 3) : nil) }
    return ReportInput(targets: [router, TargetRecord(id: 2, name: "old", host: "o.lan")],
                       sessions: [makeSession(start: t0, stopped: nil, heartbeat: at(100))],
                       sessionTargets: [SessionTargetRecord(sessionID: 1, targetID: 1, offsetNs: 0)],
                       probes: probes)
}

@Test func watchSnapshotMarksAnOutageWhileTheLatestProbesAreLost() throws {
    let hour = Watch.hourOptions(now: at(100.5))
    let snapshot = try Watch.snapshot(liveInput(lostFrom: 90), hour)
    // "old" has no probe in the hour: history, not shown.
    #expect(snapshot.targets.map(\.label) == ["router"])
    let t = snapshot.targets[0]
    #expect(t.outageSince == at(90))
    #expect(t.lastLost && t.lastRTT == nil)
    // Probe 99 is within its 2 s timeout when the heartbeat says the recorder last lived: unknown, not lost.
    #expect(t.minute.sent == 59 && t.minute.lost == 9 && t.minute.unknown == 1)
    #expect(t.hour.sent == 100)
    #expect(t.epochs.last?.end == hour.until)
}

@Test func watchSnapshotWithoutOutageShowsTheLastRTT() throws {
    let t = try Watch.snapshot(liveInput(lostFrom: 100), Watch.hourOptions(now: at(100.5))).targets[0]
    #expect(t.outageSince == nil && !t.lastLost)
    #expect(isClose(t.lastRTT, 10 + Double(99 % 3)))
}

@Test func watchSnapshotOfAStoppedRecorderIsNoOutage() throws {
    // Ten minutes after the last probe: the recorder stopped, which is no data, not an outage.
    let t = try Watch.snapshot(liveInput(lostFrom: 90), Watch.hourOptions(now: at(700))).targets[0]
    #expect(t.outageSince == nil)
    #expect(t.minute.sent == 0 && t.minute.lossPct == nil)
}

// MARK: - Where (issue 13)

@Test func watchFrameNamesTheSegmentOfAnOutageInTheReportsWords() {
    var snapshot = handMadeSnapshot()
    snapshot.targets[1].outageWhere = PathWhere(segment: .path, ttl: 3, address: "203.0.113.9")
    let lines = Watch.frame(snapshot, WatchFrameOptions(width: 160, source: "/x.db", timeZone: utc))
    #expect(lines[3].hasSuffix("| OUTAGE 2m15s since 21:57:44, where: hop 3, 203.0.113.9"), "\(lines[3])")
    #expect(lines.allSatisfy { $0.count <= 160 })
    // The router is in no outage: nothing named.
    #expect(!lines[2].contains("where"))
}

@Test func watchSnapshotJudgesWhereTheOngoingOutagesLossBegins() throws {
    let hour = Watch.hourOptions(now: at(100.5))
    // Rounds every 5 s; the two in the outage lose hop 2 onwards.
    var rounds = repeatedRounds("+++|+", 20)
    rounds[18] = "+--|-"
    rounds[19] = "+--|-"
    var input = liveInput(lostFrom: 90)
    input.pathProbes = pathProbeRecords(rounds, from: t0, spacingNs: 5 * second)
    let t = try Watch.snapshot(input, hour).targets[0]
    #expect(t.outageSince == at(90))
    #expect(t.outageWhere == PathWhere(segment: .path, ttl: 2, address: "198.18.2.1"))
    // Without rounds, where is unknown: nothing is named.
    let without = try Watch.snapshot(liveInput(lostFrom: 90), hour).targets[0]
    #expect(without.outageSince == at(90) && without.outageWhere == nil)
}
