// The summary path must give what the raw path gives: on random Store-written
// histories (loss, outages, late and slow replies, duplicates, send and ICMP
// errors, gaps, clean stops and a crash) and random windows, epochs, timeouts
// and outage lengths, every count and every outage is equal, min and max are
// equal, avg, stddev and jitter agree to rounding, percentiles within 1 %.
// On the same histories, /metrics' counters and the counts read off `dump`
// equal the report's: every view judges a probe the same way.
import Foundation
@testable import Serve
import Testing
import TestSupport
@testable import Reports
@testable import Store

/// Writes a random history of `hours` hours from t0 through Store, as a
/// recorder would, and summarizes every hour. Returns its end.
private func writeHistory(_ db: Database, seed: UInt64, hours: Int) throws -> Nanoseconds {
    var g = SplitMix64(seed: seed)
    // Reloads of a targets file draw from their own generator, so the
    // histories of g stay what they were before reloads existed.
    var reloads = SplitMix64(seed: seed ^ 0x7E10AD)
    let targets = try (1...3).map { try db.target(name: "t\($0)", host: "10.0.0.\($0)") }
    // A target no session of these probes: no data, never a session's coverage.
    _ = try db.target(name: "retired", host: "10.0.0.9")
    let end = t0 + Nanoseconds(hours) * 3600 * second
    var start = t0 + Nanoseconds(g.int(0...600)) * second
    var first = true
    while start < end {
        let interval = g.pick([2, 5, 10]) * second
        let length = Nanoseconds(g.int(1800...(4 * 3600))) * second
        let sessionEnd = min(end, start + length)
        let crashed = g.unit() < 0.3
        let session = try beginHistorySession(db, &g, targets: targets, start: start, intervalNs: interval, first: &first)
        let id = session.id
        var batch = session.batch
        var outage: [Int64: (until: Nanoseconds, kind: Int)] = [:]
        var slot = start
        var lastSlot = start
        // Half the sessions remove t3 at a slot, and most of those add it
        // back later in the same session: a span of it ends, another begins.
        let slots = Int((sessionEnd - start) / interval)
        let removeAt = reloads.unit() < 0.5 ? start + Nanoseconds(reloads.int(0...max(0, slots - 1))) * interval : Nanoseconds.max
        let back = reloads.unit() < 0.7, backAfter = Nanoseconds(reloads.int(1...400)) * interval
        let addAt = back && removeAt != .max ? removeAt + backAfter : Nanoseconds.max
        var removed = false, addedBack = false
        while slot < sessionEnd {
            if !removed && slot >= removeAt {
                batch.targetChanges.append(.removed(targetID: targets[2].id, endNs: slot + 200 * millisecond))
                removed = true
            }
            if removed && !addedBack && slot >= addAt {
                batch.targetChanges.append(.added(SessionTargetRecord(sessionID: id, targetID: targets[2].id, offsetNs: 200 * millisecond),
                                                  startNs: slot + 200 * millisecond))
                addedBack = true
            }
            // A stall now and then: a gap, no probes.
            if g.unit() < 0.002 {
                let skip = Nanoseconds(g.int(3...200)) * interval
                batch.gaps.append(GapRecord(sessionID: id, startNs: slot, endNs: min(sessionEnd, slot + skip), reason: .stalled))
                slot += skip
                continue
            }
            for (i, target) in targets.enumerated() {
                let replies = batch.replies.count, errors = batch.icmpErrors.count
                defer {
                    // Drawn as before, then dropped: t3 is not probed while removed.
                    if i == 2 && removed && !addedBack {
                        batch.probes.removeLast()
                        batch.replies.removeSubrange(replies...)
                        batch.icmpErrors.removeSubrange(errors...)
                    }
                }
                let sent = slot + Int64(i) * 100 * millisecond + Int64(g.int(0...90_000))
                var probe = ProbeRecord(sentNs: sent, targetID: target.id)
                if outage[target.id] == nil && g.unit() < 0.004 {
                    outage[target.id] = (sent + Nanoseconds(g.int(1...400)) * second, g.int(0...2))
                }
                if let o = outage[target.id], o.until > sent {
                    switch o.kind {
                    case 0: break
                    case 1: probe.sendError = g.pick([101, 113, -1])
                    default:
                        batch.icmpErrors.append(ICMPErrorRecord(sentNs: sent, targetID: target.id, rttNs: millisecond,
                                                                family: 4, type: 3, code: UInt8(g.int(0...1)), source: "10.0.0.254"))
                    }
                } else {
                    outage[target.id] = nil
                    let roll = g.unit()
                    if roll < 0.01 {
                        // isolated loss
                    } else if roll < 0.013 {
                        // late: after 2 s, sometimes after 10 s
                        batch.replies.append(ReplyRecord(sentNs: sent, targetID: target.id, rttNs: Nanoseconds(g.int(2100...12_000)) * millisecond))
                    } else if roll < 0.016 {
                        // slow but within 2 s
                        probe.rttNs = Nanoseconds(g.int(300...1999)) * millisecond
                    } else {
                        let rtt = Nanoseconds(5_000_000 + g.int(0...40_000_000))
                        if g.unit() < 0.1 {
                            batch.replies.append(ReplyRecord(sentNs: sent, targetID: target.id, rttNs: rtt))
                        } else {
                            probe.rttNs = rtt
                        }
                        if g.unit() < 0.01 {
                            batch.replies.append(ReplyRecord(sentNs: sent, targetID: target.id, rttNs: rtt + Nanoseconds(g.int(1...900)) * millisecond))
                        }
                    }
                    if g.unit() < 0.002 {
                        batch.icmpErrors.append(ICMPErrorRecord(sentNs: sent, targetID: target.id, rttNs: 2 * millisecond,
                                                                family: 6, type: 1, code: 3, source: "fd00::1"))
                    }
                }
                batch.probes.append(probe)
            }
            lastSlot = slot
            slot += interval
            if batch.probes.count >= 3000 {
                batch.heartbeatNs = lastSlot
                try db.write(batch, session: id)
                batch = WriteBatch()
            }
        }
        start = try endHistorySession(db, &g, batch, id: id, crashed: crashed, lastSlot: lastSlot, end: sessionEnd)
    }
    while try db.summarizeHours(endingBy: end + 3600 * second, maxHours: 7) > 0 {}
    return end
}

/// Begins one session of a generated history: `targets` probed 100 ms
/// apart from `start`, and its first batch, which holds the targets'
/// addresses in the history's `first` session.
func beginHistorySession(_ db: Database, _ g: inout SplitMix64, targets: [TargetRecord], start: Nanoseconds,
                         intervalNs: Nanoseconds, first: inout Bool) throws -> (id: Int64, batch: WriteBatch) {
    let id = try db.beginSession(
        NewSession(runID: g.next(), pid: 1, hostname: "h", version: "t", socketKind: "raw",
                   intervalNs: intervalNs, payloadBytes: 56, startedNs: start),
        targets: targets.enumerated().map { SessionTargetRecord(sessionID: 0, targetID: $1.id, offsetNs: Int64($0) * 100 * millisecond) })
    var batch = WriteBatch()
    if first {
        batch.addresses = targets.map { AddressRecord(targetID: $0.id, sinceNs: start, address: $0.host) }
        first = false
    }
    return (id, batch)
}

/// Writes a generated session's last batch and ends it (a crash ends the
/// data at the last heartbeat, a little after the last probe); the next
/// session's start.
func endHistorySession(_ db: Database, _ g: inout SplitMix64, _ last: WriteBatch, id: Int64, crashed: Bool,
                       lastSlot: Nanoseconds, end: Nanoseconds) throws -> Nanoseconds {
    var batch = last
    batch.heartbeatNs = crashed ? lastSlot + Nanoseconds(g.int(0...3000)) * millisecond : lastSlot
    try db.write(batch, session: id)
    if !crashed { try db.endSession(id, stoppedNs: end) }
    return end + Nanoseconds(g.int(0...900)) * second
}

/// Whether two figures agree within `relative` (both nil counts as agreeing).
func close(_ a: Double?, _ b: Double?, relative: Double) -> Bool {
    guard let a, let b else { return a == nil && b == nil }
    return abs(a - b) <= relative * abs(b) + 1e-9
}

private func expectSame(_ fast: Summary, _ raw: Summary, _ context: String, approximate: Bool) {
    #expect(fast.sent == raw.sent, "\(context)")
    #expect(fast.received == raw.received, "\(context)")
    #expect(fast.lost == raw.lost, "\(context)")
    #expect(fast.late == raw.late, "\(context)")
    #expect(fast.duplicates == raw.duplicates, "\(context)")
    #expect(fast.errors == raw.errors, "\(context)")
    #expect(fast.errorKinds == raw.errorKinds, "\(context)")
    #expect(fast.unknown == raw.unknown, "\(context)")
    #expect(fast.lossPct == raw.lossPct, "\(context)")
    #expect(fast.coverage == raw.coverage, "\(context)")
    #expect(fast.rtt.min == raw.rtt.min, "\(context)")
    #expect(fast.rtt.max == raw.rtt.max, "\(context)")
    #expect(close(fast.rtt.avg, raw.rtt.avg, relative: 1e-9), "\(context)")
    #expect(close(fast.rtt.stddev, raw.rtt.stddev, relative: 1e-6), "\(context)")
    #expect(close(fast.rtt.jitter, raw.rtt.jitter, relative: 1e-9), "\(context)")
    let tolerance = approximate ? 0.01 : 0
    #expect(close(fast.rtt.p50, raw.rtt.p50, relative: tolerance), "\(context) p50 \(String(describing: fast.rtt.p50)) vs \(String(describing: raw.rtt.p50))")
    #expect(close(fast.rtt.p90, raw.rtt.p90, relative: tolerance), "\(context)")
    #expect(close(fast.rtt.p99, raw.rtt.p99, relative: tolerance), "\(context)")
}

@Test(arguments: [1, 2, 3, 4] as [UInt64])
func summaryPathEqualsRawPath(seed: UInt64) throws {
    let file = TemporaryFolder()
    let db = try Database(path: file.file("pingem.db"), mode: .readWrite)
    let end = try writeHistory(db, seed: seed, hours: 20)
    #expect(try db.summaries(from: t0, to: end, target: 1).count >= 10)
    // t3 came and went within sessions (a reloaded targets file).
    let spans = try db.sessionTargets(sessions: db.sessions(overlapping: t0, end).map(\.id)).flatMap(\.spans)
    #expect(spans.count >= 2 && spans.contains { $0.endNs != nil }, "\(spans)")

    // Path rounds every minute for each target, some losing hops or the
    // target: both paths must judge them alike.
    var paths = SplitMix64(seed: seed ^ 0x9A7B)
    var pathProbes: [PathProbeRecord] = []
    for target in try db.targets() {
        let rounds = (0..<1200).map { _ in paths.pick(["+++|+", "+++|+", "+++|+", "++-|-", "---|-", "+-+|+", "+++|-"]) }
        pathProbes += pathProbeRecords(rounds, target: target.id, from: t0 + 7 * second, spacingNs: minute)
    }
    var g = SplitMix64(seed: seed &* 7919)
    var usedSummaries = 0, judgedWheres = 0
    for query in 0..<25 {
        let hour = 3600 * second
        var since = t0 + Nanoseconds(g.int(0...18)) * hour
        if g.unit() < 0.4 { since += Nanoseconds(g.int(1...3599)) * second }
        var until = since + Nanoseconds(g.int(1...20)) * hour
        if g.unit() < 0.4 { until += Nanoseconds(g.int(1...3599)) * second }
        let options = ReportOptions(
            since: since, until: min(until, end + hour),
            epochNs: g.pick([nil, hour, 2 * hour, 3 * hour, 30 * minute, 5 * minute, 24 * hour, 90 * minute]),
            timeoutNs: g.pick([2 * second, 2 * second, second, 500 * millisecond, 3 * second, 10 * second, 100 * millisecond]),
            outageMin: g.pick([1, 2, 3, 3, 5]),
            targets: g.unit() < 0.3 ? ["t2"] : [],
            // Local days and hours: a whole-hour zone uses summaries as UTC
            // does; a half-hour zone's hours straddle two, and are read raw.
            timeZone: g.pick([nil, nil, TimeZone(identifier: "America/New_York"), TimeZone(identifier: "Asia/Kolkata")]))
        var rawInput = try ReportInput.load(from: db, options: options)
        var fastInput = try ReportInput.load(from: db, options: options, summaries: true)
        rawInput.pathProbes = pathProbes
        fastInput.pathProbes = pathProbes
        let raw = try makeReport(rawInput, options)
        let fast = try makeReport(fastInput, options)
        #expect(!raw.percentilesApproximate)
        if fast.percentilesApproximate { usedSummaries += 1 }
        let context = "seed \(seed) query \(query) \(options)"
        #expect(fast.targets.count == raw.targets.count)
        for (f, r) in zip(fast.targets, raw.targets) {
            #expect(f.target == r.target && f.addresses == r.addresses)
            #expect(f.path == r.path && f.summary.lossWhere == r.summary.lossWhere, "\(context) \(r.target)")
            #expect(f.epochs.map(\.summary.lossWhere) == r.epochs.map(\.summary.lossWhere), "\(context) \(r.target)")
            if let w = r.summary.lossWhere, w != .unknown { judgedWheres += 1 }
            expectSame(f.summary, r.summary, context + " \(r.target) summary", approximate: fast.percentilesApproximate)
            #expect(f.epochs.count == r.epochs.count)
            for (fe, re) in zip(f.epochs, r.epochs) {
                #expect(fe.start == re.start && fe.end == re.end)
                expectSame(fe.summary, re.summary, context + " \(r.target) epoch \(re.start)", approximate: fast.percentilesApproximate)
            }
            #expect(f.outages == r.outages, "\(context) \(r.target)")
        }
    }
    #expect(usedSummaries >= 3, "too few queries took the summary path to prove anything")
    #expect(judgedWheres >= 3, "too few windows had a where to compare")
}

@Test func exactReportsSayExactAndSummarizedOnesSayApproximate() throws {
    let file = TemporaryFolder()
    let db = try Database(path: file.file("pingem.db"), mode: .readWrite)
    _ = try writeHistory(db, seed: 11, hours: 6)
    let options = ReportOptions(since: t0 + 3600 * second, until: t0 + 5 * 3600 * second, epochNs: 3600 * second)
    let exact = try makeReport(ReportInput.load(from: db, options: options), options)
    let fast = try makeReport(ReportInput.load(from: db, options: options, summaries: true), options)
    #expect(render(exact, as: .json, color: false).contains("\"percentiles\": \"exact\""))
    #expect(!render(exact, as: .table, color: false, timeZone: TimeZone(identifier: "UTC")!).contains("hourly summaries"))
    #expect(fast.percentilesApproximate)
    #expect(render(fast, as: .json, color: false).contains("\"percentiles\": \"approximate\""))
    #expect(render(fast, as: .table, color: false, timeZone: TimeZone(identifier: "UTC")!)
        .contains("Percentiles of whole hours come from hourly summaries (within 1 %); --exact reads every probe."))
}

@Test func aReportOfPrunedHoursComesFromSummariesOrSaysItCannot() throws {
    let file = TemporaryFolder()
    let db = try Database(path: file.file("pingem.db"), mode: .readWrite)
    _ = try writeHistory(db, seed: 5, hours: 8)
    let hour = 3600 * second
    let options = ReportOptions(since: t0 + 2 * hour, until: t0 + 6 * hour, epochNs: hour, outageMin: 3)
    let before = try makeReport(ReportInput.load(from: db, options: options), options)
    // What prune does: raw rows of summarized hours go, their summaries stay.
    // Here: the hours whose summaries every target can use at these options
    // (an hour where a session ends, say, cannot be pruned this way).
    let loaded = try ReportInput.load(from: db, options: options, summaries: true)
    let usable = exactSummaries(loaded, options)
    var pruned = 0
    for start in stride(from: options.since, to: options.until, by: Int(hour)) {
        let ofHour = loaded.summaries.filter { $0.hourNs == start }
        guard !ofHour.isEmpty, ofHour.allSatisfy({ usable.contains(SummaryKey(target: $0.targetID, hourNs: start)) }) else { continue }
        for table in ["probe", "reply", "icmp_error"] {
            try db.execute("DELETE FROM \(table) WHERE sent_ns >= \(start) AND sent_ns < \(start + hour)")
        }
        pruned += 1
    }
    #expect(pruned >= 2)
    let after = try makeReport(ReportInput.load(from: db, options: options, summaries: true), options)
    for (a, b) in zip(after.targets, before.targets) {
        expectSame(a.summary, b.summary, "pruned \(b.target)", approximate: true)
        for (ae, be) in zip(a.epochs, b.epochs) { expectSame(ae.summary, be.summary, "pruned epoch", approximate: true) }
        #expect(a.outages == b.outages)
    }
    #expect(after.targets.map(\.summary.sent).reduce(0, +) > 0)
    // A pruned hour cut in half cannot come from its summary: the report
    // says so, never shows the hour as empty.
    var half = options
    half.since = loaded.summaries.first { s in loaded.summaries.filter { $0.hourNs == s.hourNs }
        .allSatisfy { usable.contains(SummaryKey(target: $0.targetID, hourNs: $0.hourNs)) } }!.hourNs + 30 * minute
    #expect(throws: ReportError.self) { try makeReport(ReportInput.load(from: db, options: half, summaries: true), half) }
}

/// The whole history's counts, summed over targets, as the raw report gives them.
private func wholeHistory(_ db: Database, end: Nanoseconds, timeoutNs: Nanoseconds) throws -> Summary {
    let options = ReportOptions(since: t0 - 3600 * second, until: end + 3600 * second, timeoutNs: timeoutNs)
    let report = try makeReport(ReportInput.load(from: db, options: options), options)
    var total = Summary()
    for target in report.targets {
        let s = target.summary
        total.sent += s.sent; total.received += s.received; total.lost += s.lost; total.late += s.late
        total.duplicates += s.duplicates; total.errors += s.errors; total.unknown += s.unknown
    }
    return total
}

@Test(arguments: [1, 2, 3] as [UInt64])
func metricsAndDumpCountWhatTheReportCounts(seed: UInt64) throws {
    let file = TemporaryFolder()
    let db = try Database(path: file.file("pingem.db"), mode: .readWrite)
    var end = try writeHistory(db, seed: seed, hours: 12)
    // A recorder that died 100 ms after its last probes: those are unknown.
    let targets = try db.targets().filter { $0.name != "retired" }
    let crashed = try db.beginSession(
        NewSession(runID: seed, pid: 2, hostname: "h", version: "t", socketKind: "raw", intervalNs: second,
                   payloadBytes: 56, startedNs: end + minute),
        targets: targets.map { SessionTargetRecord(sessionID: 0, targetID: $0.id, offsetNs: 0) })
    var batch = WriteBatch()
    for k in 0..<3 as Range<Int64> {
        batch.probes += targets.map { ProbeRecord(sentNs: end + minute + k * second + $0.id, targetID: $0.id) }
    }
    batch.heartbeatNs = end + minute + 2 * second + 100 * millisecond
    try db.write(batch, session: crashed)
    end += 2 * minute

    // dump's rows: a probe's first reply, then every other reply.
    var probeCSV = "", replyCSV = ""
    try dumpCSV(db, table: .probe, since: t0 - 3600 * second, until: end + 3600 * second, targets: []) { probeCSV += $0 }
    try dumpCSV(db, table: .reply, since: t0 - 3600 * second, until: end + 3600 * second, targets: []) { replyCSV += $0 }
    let probeRows = probeCSV.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
    let replyRows = replyCSV.split(separator: "\n").dropFirst().count
    let firstReplies = probeRows.compactMap { Int64($0[2]) }
    let sendErrorsWithoutReply = probeRows.filter { $0[2].isEmpty && !$0[3].isEmpty }.count

    for timeout in [2 * second, 500 * millisecond, 10 * second] {
        let report = try wholeHistory(db, end: end, timeoutNs: timeout)
        let context = "seed \(seed) timeout \(timeout)"
        #expect(report.sent > 10_000 && report.unknown > 0 && report.late > 0 && report.errors > 0,
                "\(context): \(report.sent) sent, \(report.unknown) unknown, \(report.late) late, \(report.errors) errors")

        var metrics = MetricsState(timeoutNs: timeout, settleNs: 5 * second)
        try metrics.advance(db: db, now: end + 3600 * second + timeout + 5 * second)
        let totals = metrics.totals.values
        func sum(_ value: (ProbeTotals) -> Int64) -> Int { Int(totals.map(value).reduce(0, +)) }
        #expect(sum(\.requests) == report.sent - report.unknown, "\(context)")
        #expect(sum(\.responses) == report.received, "\(context)")
        #expect(sum { $0.bucketCounts.reduce(0, +) } == report.received, "\(context)")
        #expect(sum(\.lateReplies) == report.late, "\(context)")
        #expect(sum(\.duplicates) == report.duplicates, "\(context)")
        #expect(sum(\.unknown) == report.unknown, "\(context)")
        #expect(sum(\.sendErrors) == sendErrorsWithoutReply, "\(context)")

        // Counter for counter, per label: the totals built from summaries
        // equal those built from every raw probe (a first scrape before the
        // history reads no summary; the next reads the rest raw).
        var raw = MetricsState(timeoutNs: timeout, settleNs: 5 * second)
        try raw.advance(db: db, now: t0 - 3600 * second)
        try raw.advance(db: db, now: end + 3600 * second + timeout + 5 * second)
        #expect(metrics.totals == raw.totals, "\(context)")
        #expect(metrics.totals.values.map(\.responseNsSum).reduce(0, +) > 0, "\(context)")

        #expect(probeRows.count == report.sent, "\(context)")
        #expect(firstReplies.count == report.received + report.late, "\(context)")
        #expect(firstReplies.filter { $0 <= timeout }.count == report.received, "\(context)")
        #expect(firstReplies.filter { $0 > timeout }.count == report.late, "\(context)")
        #expect(replyRows == report.duplicates, "\(context)")
    }
}


/// Summaries of hours whose raw probes were pruned still count, and those
/// written before they held per-bucket counts (encoding 2) still give exact
/// histograms: hours whose bins straddle a bound are read raw.
@Test(arguments: [4, 5] as [UInt64])
func metricsCountPrunedHoursAndOldSummaries(seed: UInt64) throws {
    let file = TemporaryFolder()
    let db = try Database(path: file.file("pingem.db"), mode: .readWrite)
    let end = try writeHistory(db, seed: seed, hours: 12)
    let now = end + 3600 * second
    func totals() throws -> [MetricLabels: ProbeTotals] {
        var metrics = MetricsState(timeoutNs: 2 * second, settleNs: 5 * second)
        try metrics.advance(db: db, now: now)
        return metrics.totals
    }
    var raw = MetricsState(timeoutNs: 2 * second, settleNs: 5 * second)
    try raw.advance(db: db, now: t0 - 3600 * second)
    try raw.advance(db: db, now: now)
    let exact = raw.totals

    let targets = try db.targets()
    let summaries = try targets.flatMap { try db.summaries(from: Int64.min, to: Int64.max, target: $0.id) }
    #expect(summaries.count > 20 && summaries.allSatisfy { $0.responseBuckets != nil })
    var old = summaries
    for i in old.indices { old[i].responseBuckets = nil }
    try db.writeSummaries(old)
    let straddling = old.filter { responseBuckets($0, approximate: false) == nil }.count
    #expect(straddling > 0, "some hour has a bin across a bound")
    #expect(try totals() == exact, "seed \(seed): summaries without per-bucket counts")
    try db.writeSummaries(summaries)
    #expect(try totals() == exact, "seed \(seed): summaries")

    // What prune does: a prefix of the raw rows goes (here to the middle of
    // an hour), the summaries stay. ICMP errors of pruned hours are what
    // their summaries kept: the first error of each lost probe.
    let cutoff = t0 + 5 * 3600 * second + 20 * 60 * second
    for table in ["probe", "reply", "icmp_error"] { try db.execute("DELETE FROM \(table) WHERE sent_ns < \(cutoff)") }
    var pruned = try totals()
    #expect(pruned.values.map(\.icmpErrors.count).reduce(0, +) > 0)
    var expected = exact
    for key in Array(pruned.keys) { pruned[key]!.icmpErrors = [:] }
    for key in Array(expected.keys) { expected[key]!.icmpErrors = [:] }
    #expect(pruned == expected, "seed \(seed): pruned before \(cutoff)")
}
