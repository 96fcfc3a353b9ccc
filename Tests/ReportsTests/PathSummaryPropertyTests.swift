// The path from path summaries must be the raw rounds' path: on random
// Store-written histories (a rate-limited hop, a hop that never answers,
// forward loss from some hop, gateway, target and local outages, a route
// change, slow and late answers, a crash) and random windows, epochs and
// timeouts, every hop's counts and addresses, every Epoch.path, every
// `where` (window, epochs, outages) are equal, hop RTT min and max equal,
// avg, stddev and jitter to rounding, percentiles within 1 %.
import Foundation
import Testing
import TestSupport
@testable import Reports
@testable import Store

/// What kind of trouble a target is in for a while.
private enum Trouble: CaseIterable { case gateway, fromHop, target, local }

/// Writes `hours` hours of two targets through Store (probes every 10 s,
/// rounds every 30 s and every slot while the target loses probes) and
/// summarizes every hour. Returns the history's end.
func writePathHistory(_ db: Database, seed: UInt64, hours: Int) throws -> Nanoseconds {
    var g = SplitMix64(seed: seed)
    let targets = try (1...2).map { try db.target(name: "t\($0)", host: "10.0.0.\($0)") }
    let end = t0 + Nanoseconds(hours) * 3600 * second
    let interval = 10 * second
    // Per target: its distance, a hop that rate-limits, one that never answers.
    let distance = targets.map { _ in g.int(4...6) }
    let limited = distance.map { g.int(1...($0 - 1)) }
    let silent = distance.map { g.unit() < 0.5 ? g.int(2...($0 - 1)) : 0 }
    let routeChange = t0 + Nanoseconds(g.int(1...max(1, hours - 1))) * 3600 * second + Nanoseconds(g.int(0...3599)) * second
    var start = t0 + Nanoseconds(g.int(0...600)) * second
    var first = true
    while start < end {
        let sessionEnd = min(end, start + Nanoseconds(g.int(3600...(5 * 3600))) * second)
        let crashed = g.unit() < 0.3
        let session = try beginHistorySession(db, &g, targets: targets, start: start, intervalNs: interval, first: &first)
        let id = session.id
        var batch = session.batch
        var trouble: [Int: (until: Nanoseconds, kind: Trouble, hop: Int)] = [:]
        var losingUntil: [Int: Nanoseconds] = [:]
        var slot = start, lastSlot = start, index = 0
        while slot < sessionEnd {
            for (t, target) in targets.enumerated() {
                let sent = slot + Int64(t) * 100 * millisecond
                if trouble[t] == nil && g.unit() < 0.006 {
                    let kind = g.pick(Trouble.allCases)
                    trouble[t] = (sent + Nanoseconds(g.int(20...600)) * second, kind, g.int(2...(distance[t] - 1)))
                }
                if let tr = trouble[t], tr.until <= sent { trouble[t] = nil }
                var probe = ProbeRecord(sentNs: sent, targetID: target.id)
                let lostAlone = g.unit() < 0.01
                if let tr = trouble[t] {
                    if tr.kind == .local { probe.sendError = 101 }
                    losingUntil[t] = sent + 60 * second
                } else if !lostAlone {
                    probe.rttNs = Nanoseconds(10 + g.int(0...20)) * millisecond
                } else {
                    losingUntil[t] = sent + 60 * second
                }
                batch.probes.append(probe)
                let losing = (losingUntil[t] ?? 0) > sent
                guard losing || index % 3 == 0 else { continue }
                var marks: [Character] = []
                for hop in 1..<distance[t] {
                    var mark: Character = hop == silent[t] ? "-" : (hop == limited[t] && g.unit() < 0.6 ? "-" : "+")
                    if hop == 2 && sent >= routeChange && mark == "+" { mark = "b" }
                    if let tr = trouble[t] {
                        switch tr.kind {
                        case .gateway: mark = "-"
                        case .fromHop: if hop >= tr.hop { mark = "-" }
                        case .local: mark = "x"
                        case .target: break
                        }
                    }
                    marks.append(mark)
                }
                let reached = trouble[t] == nil && !(g.unit() < 0.03)
                let round = String(marks) + "|" + (trouble[t]?.kind == .local ? "x" : reached ? "+" : "-")
                var records = pathProbeRecords([round], target: target.id, from: sent + 7 * millisecond)
                for i in records.indices where records[i].receivedNs != nil {
                    // Spread RTTs; now and then slow (> 500 ms) or late (> 2 s).
                    let roll = g.unit()
                    let extra: Nanoseconds = roll < 0.01 ? Nanoseconds(g.int(600...1900)) * millisecond
                        : roll < 0.015 ? Nanoseconds(g.int(2100...4000)) * millisecond
                        : Nanoseconds(g.int(0...3_000_000))
                    records[i].receivedNs! += extra
                }
                batch.pathProbes += records
            }
            lastSlot = slot
            slot += interval
            index += 1
        }
        start = try endHistorySession(db, &g, batch, id: id, crashed: crashed, lastSlot: lastSlot, end: sessionEnd)
    }
    while try db.summarizeHours(endingBy: end + 3600 * second, maxHours: 7) > 0 {}
    return end
}


/// Every figure of two paths: counts and addresses exactly, RTTs as the
/// histograms allow.
private func expectSamePath(_ fast: [PathHop], _ raw: [PathHop], _ context: String) {
    #expect(fast.count == raw.count, "\(context)")
    for (f, r) in zip(fast, raw) {
        #expect(f.ttl == r.ttl && f.isTarget == r.isTarget && f.sent == r.sent && f.answered == r.answered, "\(context) hop \(r.ttl)")
        #expect(f.lossPct == r.lossPct && f.forwardLossPct == r.forwardLossPct, "\(context) hop \(r.ttl)")
        #expect(f.address == r.address && f.addresses == r.addresses, "\(context) hop \(r.ttl)")
        #expect(f.rtt.min == r.rtt.min && f.rtt.max == r.rtt.max, "\(context) hop \(r.ttl)")
        #expect(close(f.rtt.avg, r.rtt.avg, relative: 1e-9) && close(f.rtt.stddev, r.rtt.stddev, relative: 1e-6), "\(context) hop \(r.ttl)")
        #expect(close(f.rtt.jitter, r.rtt.jitter, relative: 1e-9), "\(context) hop \(r.ttl)")
        for (a, b) in [(f.rtt.p50, r.rtt.p50), (f.rtt.p90, r.rtt.p90), (f.rtt.p99, r.rtt.p99)] {
            #expect(close(a, b, relative: 0.01), "\(context) hop \(r.ttl) percentile \(String(describing: a)) vs \(String(describing: b))")
        }
    }
}

@Test(arguments: [1, 2, 3, 4] as [UInt64])
func pathFromSummariesEqualsRawPath(seed: UInt64) throws {
    let file = TemporaryFolder()
    let db = try Database(path: file.file("pingem.db"), mode: .readWrite)
    let end = try writePathHistory(db, seed: seed, hours: 16)
    #expect(try db.pathSummaries(from: t0, to: end, targets: nil).count >= 20)
    var g = SplitMix64(seed: seed &* 104_729)
    var summarizedQueries = 0, judgedWheres = 0, outageWheres = 0
    for query in 0..<30 {
        let hour = 3600 * second
        var since = t0 + Nanoseconds(g.int(0...14)) * hour
        if g.unit() < 0.4 { since += Nanoseconds(g.int(1...3599)) * second }
        var until = since + Nanoseconds(g.int(1...16)) * hour
        if g.unit() < 0.4 { until += Nanoseconds(g.int(1...3599)) * second }
        let options = ReportOptions(
            since: since, until: min(until, end + hour),
            epochNs: g.pick([nil, hour, 2 * hour, 30 * minute, 5 * minute, 24 * hour, 90 * minute]),
            timeoutNs: g.pick([2 * second, 2 * second, 2 * second, second, 500 * millisecond, 3 * second]),
            outageMin: g.pick([1, 2, 3]),
            targets: g.unit() < 0.3 ? ["t2"] : [])
        var rawInput = try ReportInput.load(from: db, options: options)
        try rawInput.loadPathProbes(from: db, options: options, summaries: false)
        var fastInput = try ReportInput.load(from: db, options: options, summaries: true)
        try fastInput.loadPathProbes(from: db, options: options)
        #expect(rawInput.pathSummaries.isEmpty)
        if !exactPathSummaries(fastInput, options).isEmpty { summarizedQueries += 1 }
        let raw = try makeReport(rawInput, options)
        let fast = try makeReport(fastInput, options)
        let context = "seed \(seed) query \(query) \(options)"
        for (f, r) in zip(fast.targets, raw.targets) {
            expectSamePath(f.path, r.path, context + " \(r.target)")
            #expect(f.summary.lossWhere == r.summary.lossWhere, "\(context) \(r.target)")
            #expect(f.epochs.map(\.path) == r.epochs.map(\.path), "\(context) \(r.target)")
            #expect(f.epochs.map(\.summary.lossWhere) == r.epochs.map(\.summary.lossWhere), "\(context) \(r.target)")
            #expect(f.outages.map(\.lossWhere) == r.outages.map(\.lossWhere), "\(context) \(r.target)")
            if let w = r.summary.lossWhere, w != .unknown { judgedWheres += 1 }
            outageWheres += r.outages.filter { $0.lossWhere.segment != .unknown }.count
        }
    }
    #expect(summarizedQueries >= 8, "too few queries took path summaries to prove anything")
    #expect(judgedWheres >= 5, "too few windows had a where to compare")
    #expect(outageWheres >= 5, "too few outages had a where to compare")
}

/// Every segment the judge can name shows up in these histories, so the
/// property above compares them all.
@Test func pathHistoriesBlameEverySegment() throws {
    var segments = Set<PathSegment>()
    for seed in [1, 2, 3, 4] as [UInt64] {
        let file = TemporaryFolder()
        let db = try Database(path: file.file("pingem.db"), mode: .readWrite)
        let end = try writePathHistory(db, seed: seed, hours: 16)
        let options = ReportOptions(since: t0, until: end, epochNs: nil)
        var input = try ReportInput.load(from: db, options: options, summaries: true)
        try input.loadPathProbes(from: db, options: options)
        for target in try makeReport(input, options).targets { segments.formUnion(target.outages.map(\.lossWhere.segment)) }
    }
    #expect(segments.isSuperset(of: [.gateway, .path, .target, .local]), "\(segments)")
}

/// Raw probes with path summaries at several widths at once (what export's
/// levels and watch make): an hour is taken from its summary only where it is
/// whole in every width's epochs, so each width's epoch paths equal the raw
/// rounds'. Before, the 5-minute level put a whole hour's tally in its first
/// epoch.
@Test func severalWidthsAtOnceTakeOnlyHoursWholeInEach() throws {
    let file = TemporaryFolder()
    let db = try Database(path: file.file("pingem.db"), mode: .readWrite)
    let end = try writePathHistory(db, seed: 5, hours: 6)
    let options = ReportOptions(since: t0, until: end, epochNs: nil, timeoutNs: 2 * second, outageMin: 2, targets: [])
    let widths: [Nanoseconds?] = [5 * minute, 3600 * second, nil]
    var raw = try ReportInput.load(from: db, options: options)
    try raw.loadPathProbes(from: db, options: options, summaries: false)
    var mixed = raw
    try mixed.loadPathProbes(from: db, options: options, summaries: true)
    mixed.pathProbes = raw.pathProbes
    #expect(!mixed.pathSummaries.isEmpty)
    let a = try makeReports(raw, options, epochWidths: widths).reports
    let b = try makeReports(mixed, options, epochWidths: widths).reports
    for (w, (ra, rb)) in zip(a, b).enumerated() {
        for (ta, tb) in zip(ra.targets, rb.targets) {
            #expect(ta.epochs.map(\.path) == tb.epochs.map(\.path), "width \(w) \(ta.target)")
            #expect(ta.epochs.isEmpty || ta.epochs.contains { !$0.path.isEmpty })
        }
    }
}

/// Export's summary path at several levels: the loader reads raw rounds of
/// every hour some level cannot take from its summary (here the 90-minute
/// level splits every other hour that the hour level takes whole), and one
/// call judges every level from the same pieces, so each level's epoch
/// paths and `where`s are the raw rounds'. Before, the loader skipped the
/// hours the finest level could use and the 90-minute level lacked them.
@Test func everyLevelOfTheSummaryPathHasTheRoundsItNeeds() throws {
    let file = TemporaryFolder()
    let db = try Database(path: file.file("pingem.db"), mode: .readWrite)
    let end = try writePathHistory(db, seed: 7, hours: 9)
    let widths: [Nanoseconds?] = [3600 * second, 90 * minute]
    let options = ReportOptions(since: t0, until: end, epochNs: widths[0], timeoutNs: 2 * second, outageMin: 2, targets: [])
    var raw = try ReportInput.load(from: db, options: options)
    try raw.loadPathProbes(from: db, options: options, summaries: false)
    // The probes' summaries as the coarser level takes them (each hour it
    // takes whole the hour level does too).
    var coarser = options
    coarser.epochNs = widths[1]
    var fast = try ReportInput.load(from: db, options: coarser, summaries: true)
    try fast.loadPathProbes(from: db, options: options, widths: widths)
    #expect(!fast.summaries.isEmpty && !exactPathSummaries(fast, options).isEmpty)
    #expect(fast.pathProbes.count < raw.pathProbes.count && fast.pathProbes.count > 0)
    let a = try makeReports(raw, options, epochWidths: widths).reports
    let b = try summaryReports(fast, options, epochWidths: widths, histograms: false).reports
    for (w, (ra, rb)) in zip(a, b).enumerated() {
        for (ta, tb) in zip(ra.targets, rb.targets) {
            #expect(ta.epochs.map(\.path) == tb.epochs.map(\.path), "width \(w) \(ta.target)")
            #expect(ta.epochs.map(\.summary.lossWhere) == tb.epochs.map(\.summary.lossWhere), "width \(w) \(ta.target)")
            #expect(ta.outages.map(\.lossWhere) == tb.outages.map(\.lossWhere), "width \(w) \(ta.target)")
            #expect(ta.epochs.contains { !$0.path.isEmpty })
        }
    }
}

/// Serve's live page keeps the runs of summarized path hours between
/// reports (KeptPathRuns): a run is taken again only where its rows are the
/// same bytes and its segments still lie in one epoch of every width, and
/// every report equals one made without kept runs.
@Test func keptPathRunsGiveTheSameReportAndAreMadeAgainWhenTheirRowsChange() throws {
    let file = TemporaryFolder()
    let db = try Database(path: file.file("pingem.db"), mode: .readWrite)
    let end = try writePathHistory(db, seed: 8, hours: 30)
    let hour = 3600 * second
    var options = ReportOptions(since: t0, until: end, epochNs: 24 * hour, timeoutNs: 2 * second, outageMin: 2, targets: [])
    var input = try ReportInput.load(from: db, options: options, summaries: true)
    try input.loadPathProbes(from: db, options: options)
    func report(_ input: ReportInput, _ options: ReportOptions, _ kept: KeptPathRuns?) throws -> Report {
        try summaryReports(input, options, epochWidths: [options.epochNs], histograms: false, pathRuns: kept).reports[0]
    }
    let fresh = try report(input, options, nil)
    #expect(fresh.targets.allSatisfy { !$0.path.isEmpty })
    let kept = KeptPathRuns()
    #expect(try report(input, options, kept) == fresh)
    let runs = kept.count
    #expect(runs >= 4 && kept.reused == 0)
    #expect(try report(input, options, kept) == fresh)
    #expect(kept.reused == runs, "every run taken again")

    // One hour's summary gone, not the first of its run: the run keeps its
    // first hour but not its rows, so it is made again (and what is left of
    // it after the gap is a new run).
    let usable = exactPathSummaries(input, options)
    let gone = try #require(input.pathSummaries.first { row in
        let before = row.hourNs - hour
        return usable.contains(SummaryKey(target: row.targetID, hourNs: row.hourNs))
            && usable.contains(SummaryKey(target: row.targetID, hourNs: before))
            && floorDivide(before, 24 * hour) == floorDivide(row.hourNs, 24 * hour)
    })
    input.pathSummaries.removeAll { $0 == gone }
    let reused = kept.reused
    #expect(try report(input, options, kept) == (try report(input, options, nil)))
    #expect(kept.reused - reused == runs - 1)

    // Epochs of 6 hours: the segments kept for days do not lie in one epoch
    // each, so those runs are made again.
    options.epochNs = 6 * hour
    #expect(try report(input, options, kept) == (try report(input, options, nil)))
}
