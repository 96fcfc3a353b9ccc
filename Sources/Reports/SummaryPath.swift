// The report's summary path: whole hours that have a per-hour summary (Store's
// HourSummary) and for which that summary gives exactly what the raw probes
// would, at this report's --timeout and --outage-min, are taken from it;
// everything else (partial hours at the window's edges, hours without a
// summary, hours that fail a check) is classified from raw probes as usual.
//
// What stays exact: every count, min, max, avg, stddev (up to floating-point
// rounding), jitter, coverage (always from sessions and gaps) and outages,
// which are stitched across hours from the lost runs each summary keeps.
// Percentiles of a period that includes a summarized hour come from the
// merged RTT histograms (raw RTTs of the period added to them): within 0.75 %
// of the exact nearest-rank value, and the report says "approximate".
import Dispatch
import Store
import Synchronization

/// Whether `summary` gives exactly what its raw probes give for `options`:
/// - it covers a whole hour inside the window and inside one epoch;
/// - the timeout classifies every first reply as the summary did (no first
///   reply between summaryTimeoutNs and the report's timeout);
/// - no probe turns unknown: none was at summaryTimeoutNs (else rawOnly),
///   and every probe without reply or error was sent at least the timeout
///   before its session's end (its end as the builder saw it, which only
///   moves later while a session runs);
/// - outages of one probe are wanted only if the hour has no single-probe runs.
public func summaryIsExact(_ summary: HourSummary, _ options: ReportOptions) -> Bool {
    summaryIsExact(summary, options, epochs: nil)
}

/// `epochs`, the report's own, spares finding the epochs of each hour again.
func summaryIsExact(_ summary: HourSummary, _ options: ReportOptions, epochs: EpochStarts?) -> Bool {
    guard !summary.rawOnly, hourIsWhole(summary.hourNs, options, epochs: epochs) else { return false }
    if summary.received > 0 && summary.rtt.max > options.timeoutNs { return false }
    if let slow = summary.minSlowRTT, slow <= options.timeoutNs { return false }
    if options.outageMin < 2 && summary.omittedSingleRuns > 0 { return false }
    if let headroom = summary.minUnansweredHeadroom, options.timeoutNs > headroom { return false }
    return true
}

/// Whether the hour from `hourNs` lies inside the window and inside one epoch.
func hourIsWhole(_ hourNs: Nanoseconds, _ options: ReportOptions, epochs: EpochStarts?) -> Bool {
    let end = hourNs + summaryHourNs
    guard hourNs >= options.since, end <= options.until else { return false }
    guard let epoch = options.epochNs else { return true }
    // Local days and hours: a half-hour zone's hours straddle two summaries.
    return epochs.map { $0.epoch(of: hourNs) == $0.epoch(of: end - 1) }
        ?? (epochPeriods(since: hourNs, until: end, epochNs: epoch, timeZone: options.timeZone).count == 1)
}

/// The (target, hour) path summaries of `input` that this report takes as
/// they are: whole hours inside one epoch, judged at summaryTimeoutNs as
/// at the report's timeout (PathSummary.judgesAlike). Damaged ones are
/// left to the raw rounds.
func exactPathSummaries(_ input: ReportInput, _ options: ReportOptions) -> Set<SummaryKey> {
    Set(exactPathSummaries(input.pathSummaries, options).map { SummaryKey(target: $0.targetID, hourNs: $0.hourNs) })
}

/// Those of `rows` that a report of `options` takes as they are, in order.
func exactPathSummaries(_ rows: [PathSummaryRow], _ options: ReportOptions) -> [PathSummaryRow] {
    guard !rows.isEmpty else { return [] }
    let epochs = (try? epochPeriods(options)).map(EpochStarts.init)
    return rows.filter { hourIsWhole($0.hourNs, options, epochs: epochs) && $0.judgesAlike(timeoutNs: options.timeoutNs) }
}

struct SummaryKey: Hashable {
    var target: Int64
    var hourNs: Nanoseconds
}

/// The (target, hour) summaries of `input` that this report takes as they are.
func exactSummaries(_ input: ReportInput, _ options: ReportOptions) -> Set<SummaryKey> {
    let epochs = (try? epochPeriods(options)).map(EpochStarts.init)
    return Set(input.summaries.lazy.filter { summaryIsExact($0, options, epochs: epochs) }
        .map { SummaryKey(target: $0.targetID, hourNs: $0.hourNs) })
}

// MARK: - The report

func makeSummaryReport(_ input: ReportInput, _ options: ReportOptions) throws -> Report {
    try summaryReport(input, options, histograms: false).report
}

/// The summary-path report, and with `histograms` each selected target's
/// received round-trip times over the whole window as counts per RTT bucket
/// (Store's rttBucket): the raw probes' plus the summarized hours'. Export
/// draws its whole-window histogram from them without holding every probe.
func summaryReport(_ input: ReportInput, _ options: ReportOptions, histograms: Bool) throws
    -> (report: Report, histograms: [[Int]]) {
    let (reports, counts) = try summaryReports(input, options, epochWidths: [options.epochNs], histograms: histograms)
    return (reports[0], counts)
}

/// The summary-path reports of one window at several epoch widths, and
/// with `histograms` the whole window's RTT bucket counts (as
/// summaryReport). Each width's figures are its own report's; the path is
/// judged once for all of them (judgePaths), from the hours whose path
/// summaries every width can use: each equals summaryReport at its width
/// over the same path pieces. `pathRuns` as for makeReports.
func summaryReports(_ input: ReportInput, _ options: ReportOptions, epochWidths: [Nanoseconds?], histograms: Bool,
                    pathRuns: KeptPathRuns? = nil) throws -> (reports: [Report], histograms: [[Int]]) {
    let (optionsByWidth, periodsByWidth) = try validated(options, epochWidths: epochWidths)
    let exactByWidth = optionsByWidth.map { exactSummaries(input, $0) }
    let selected = try selectTargets(input.targets, options.targets)
    let index = ProbeIndex(input)

    // Each selected target's probes, in the loader's send order: one pass
    // (a pass per target on its own core read ten times the memory and cost
    // more). A linear search of a few ids is cheaper than hashing every probe.
    let ids = selected.map(\.id)
    var probesOf = [[ProbeRecord]](repeating: [], count: selected.count)
    for slot in probesOf.indices { probesOf[slot].reserveCapacity(input.probes.count / max(1, selected.count) + 16) }
    for probe in input.probes {
        if let slot = ids.firstIndex(of: probe.targetID) { probesOf[slot].append(probe) }
    }
    let probesByTarget = probesOf

    // Targets are independent: each on its own core, as in makeReports.
    typealias Result = Swift.Result<(reports: [TargetReport], approximate: [Bool], histogram: [Int]), Error>
    let results = Mutex([Result?](repeating: nil, count: selected.count))
    DispatchQueue.concurrentPerform(iterations: selected.count) { t in
        let result = Result {
            let target = selected[t]
            var reports: [TargetReport] = [], approximate: [Bool] = [], histogram: [Int] = []
            for w in optionsByWidth.indices {
                let last = w == optionsByWidth.count - 1
                let (report, used, counts) = try summaryTargetReport(
                    target, probes: probesByTarget[t], input: input, index: index, exact: exactByWidth[w],
                    options: optionsByWidth[w], periods: periodsByWidth[w], histogram: histograms && last)
                reports.append(report)
                approximate.append(used)
                if last { histogram = counts }
            }
            let sessions = sessionsJudging(target.id, sessions: input.sessions, sessionTargets: input.sessionTargets)
            TargetReport.judgePaths(&reports, pathJudge(target, input: input, options: options, sessions: sessions,
                                                        widths: optionsByWidth), kept: pathRuns, target: target.id)
            return (reports, approximate, histogram)
        }
        results.withLock { $0[t] = result }
    }
    let perTarget = try results.withLock({ $0 }).map { try $0!.get() }
    let reports = optionsByWidth.enumerated().map { w, o in
        var report = Report(since: o.since, until: o.until, epochNs: o.epochNs, timeoutNs: o.timeoutNs,
                            targets: perTarget.map { $0.reports[w] })
        report.percentilesApproximate = perTarget.contains { $0.approximate[w] }
        return report
    }
    return (reports, histograms ? perTarget.map(\.histogram) : [])
}

/// One target's report without its path (the caller judges it for all
/// widths at once); true when some period took a summary; with
/// `histogram`, the window's RTT bucket counts (else empty).
private func summaryTargetReport(
    _ target: TargetRecord, probes all: [ProbeRecord], input: ReportInput, index: ProbeIndex,
    exact: Set<SummaryKey>, options: ReportOptions, periods: [(Nanoseconds, Nanoseconds)], histogram: Bool
) throws -> (TargetReport, Bool, [Int]) {
    var all = all
    if zip(all, all.dropFirst()).contains(where: { $0.sentNs > $1.sentNs }) { all.sort { $0.sentNs < $1.sentNs } }
    let sessions = sessionsJudging(target.id, sessions: input.sessions, sessionTargets: input.sessionTargets)
    let hours = input.summaries.filter { $0.targetID == target.id }.sorted { $0.hourNs < $1.hourNs }
    let used = hours.filter { exact.contains(SummaryKey(target: target.id, hourNs: $0.hourNs)) }

    func firstIndex(_ probes: [ProbeRecord], atOrAfter time: Nanoseconds) -> Int {
        var low = 0, high = probes.count
        while low < high {
            let mid = (low + high) / 2
            if probes[mid].sentNs < time { low = mid + 1 } else { high = mid }
        }
        return low
    }
    // A summary this report cannot use needs its raw probes; if they were
    // pruned, say so rather than count the hour as empty.
    var usedIndex = 0
    for summary in hours where summary.hourNs < options.until && summary.hourNs + summaryHourNs > options.since {
        while usedIndex < used.count && used[usedIndex].hourNs < summary.hourNs { usedIndex += 1 }
        if usedIndex < used.count && used[usedIndex].hourNs == summary.hourNs { continue }
        let count = firstIndex(all, atOrAfter: summary.hourNs + summaryHourNs) - firstIndex(all, atOrAfter: summary.hourNs)
        if count != summary.sent {
            throw ReportError("""
                The raw probes of \(target.name) in the hour from \(isoUTC(summary.hourNs)) were pruned and its \
                summary cannot answer this report exactly: use --timeout 2s, --outage-min 2 or more, epochs of \
                whole hours and a window of whole hours.
                """)
        }
    }
    // Raw probes of the window outside the hours taken from summaries (no
    // copy when no hour is: a day of 5-minute epochs).
    let window = all[firstIndex(all, atOrAfter: options.since)..<firstIndex(all, atOrAfter: options.until)]
    var raw = window
    if !used.isEmpty {
        var kept: [ProbeRecord] = []
        kept.reserveCapacity(window.count)
        var nextUsed = 0
        for probe in window {
            while nextUsed < used.count && used[nextUsed].hourNs + summaryHourNs <= probe.sentNs { nextUsed += 1 }
            if nextUsed < used.count && used[nextUsed].hourNs <= probe.sentNs { continue }
            kept.append(probe)
        }
        raw = kept[...]
    }
    let classified = classify(raw, target: target.id, sessions: sessions, index: index, timeoutNs: options.timeoutNs)
    let covered = coveredIntervals(
        of: target.id, sessions: input.sessions, sessionTargets: input.sessionTargets, gaps: input.gaps)

    var approximate = false
    var hourCursor = 0
    func period(_ start: Nanoseconds, _ end: Nanoseconds) -> Summary {
        let cov = coverage(covered, start, end)
        let lower = lowerBound(classified, start), upper = lowerBound(classified, end)
        while hourCursor < used.count && used[hourCursor].hourNs < start { hourCursor += 1 }
        var last = hourCursor
        while last < used.count && used[last].hourNs < end { last += 1 }
        if last == hourCursor { return summarize(classified[lower..<upper], coverage: cov) }
        approximate = true
        var acc = Accumulator()
        var i = lower
        for hour in used[hourCursor..<last] {
            var j = i
            while j < upper && classified[j].sentNs < hour.hourNs { j += 1 }
            acc.add(classified[i..<j])
            acc.add(hour)
            i = j
        }
        acc.add(classified[i..<upper])
        return acc.summary(coverage: cov)
    }
    let summary = period(options.since, options.until)
    hourCursor = 0
    let epochs = periods.map { Epoch(start: $0.0, end: $0.1, summary: period($0.0, $0.1)) }
    let outages = outagesOf(stretches(classified, hours: used, sessions: sessions), sessions: sessions, minimum: options.outageMin)
    var report = TargetReport(
        target: target.name, host: target.host,
        addresses: addressesInEffect(input.addresses, target: target.id, options.since, options.until),
        summary: summary, epochs: epochs, outages: outages)
    report.probed(as: latestProbing(input, target: target.id, options.since, options.until))
    return (report, approximate, histogram ? bucketCounts(classified, hours: used) : [])
}

/// Received RTTs per Store rttBucket: the raw probes' and the hours'.
private func bucketCounts(_ classified: [ClassifiedProbe], hours: [HourSummary]) -> [Int] {
    var counts = [Int](repeating: 0, count: rttBucketCount)
    for probe in classified where probe.verdict == .received { counts[Int(rttBucket(probe.rttNs))] += 1 }
    for hour in hours {
        for bin in hour.histogram { counts[Int(bin.bucket)] += bin.count }
    }
    return counts
}

private func lowerBound(_ probes: [ClassifiedProbe], _ time: Nanoseconds) -> Int {
    var low = 0, high = probes.count
    while low < high {
        let mid = (low + high) / 2
        if probes[mid].sentNs < time { low = mid + 1 } else { high = mid }
    }
    return low
}

// MARK: - Merging raw probes and summaries

/// Counts and RTT statistics of a period made of raw probes and summarized
/// hours, added in time order (jitter joins each piece to the previous one).
private struct Accumulator {
    var s = Summary()
    var rtt = RTTAccumulator()
    var histogram = RTTHistogram()

    mutating func add(_ probes: ArraySlice<ClassifiedProbe>) {
        var piece = RTTAccumulator()
        for probe in probes {
            s.count(probe)
            if probe.verdict == .received {
                piece.add(probe.rttNs)
                histogram.add(probe.rttNs)
            }
        }
        rtt.append(piece)
    }

    mutating func add(_ hour: HourSummary) {
        s.sent += hour.sent; s.received += hour.received; s.lost += hour.lost; s.late += hour.late
        s.duplicates += hour.duplicates; s.unknown += hour.unknown
        for (kind, count) in hour.failures {
            s.errors += count
            s.errorKinds[failureName(kind), default: 0] += count
        }
        rtt.append(hour.rtt)
        histogram.add(hour.histogram)
    }

    func summary(coverage: Double) -> Summary {
        var summary = s
        summary.coverage = coverage
        summary.lossPct = lossPercent(lost: summary.lost, sent: summary.sent, unknown: summary.unknown)
        summary.rtt = RTTStats(rtt.figures(histogram))
        return summary
    }
}

// MARK: - Outages across hours

/// The target's probes in time order as stretches: runs of raw probes
/// between the summarized hours, and the hours.
private func stretches(_ classified: [ClassifiedProbe], hours: [HourSummary], sessions: [SessionRecord]) -> [RunStretch] {
    var result: [RunStretch] = []
    var i = 0
    for hour in hours {
        var j = i
        while j < classified.count && classified[j].sentNs < hour.hourNs { j += 1 }
        if let stretch = rawStretch(classified[i..<j], sessions: sessions) { result.append(stretch) }
        if hour.sent > 0 { result.append(hour.stretch) }
        i = j
    }
    if let stretch = rawStretch(classified[i...], sessions: sessions) { result.append(stretch) }
    return result
}
