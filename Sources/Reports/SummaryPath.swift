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
func summaryIsExact(_ summary: HourSummary, _ options: ReportOptions, targetSessions: [SessionRecord]) -> Bool {
    let end = summary.hourNs + summaryHourNs
    guard !summary.rawOnly, summary.hourNs >= options.since, end <= options.until else { return false }
    if let epoch = options.epochNs, floorDivide(summary.hourNs, epoch) != floorDivide(end - 1, epoch) { return false }
    if summary.received > 0 && summary.rttMax > options.timeoutNs { return false }
    if let slow = summary.minSlowRTT, slow <= options.timeoutNs { return false }
    if options.outageMin < 2 && summary.omittedSingleRuns > 0 { return false }
    if let headroom = summary.minUnansweredHeadroom, options.timeoutNs > headroom { return false }
    return true
}

/// The sessions a target's probes are classified with (as classifyTarget).
func sessionsOfTarget(_ target: Int64, _ input: ReportInput) -> [SessionRecord] {
    let probed = Set(input.sessionTargets.lazy.filter { $0.targetID == target }.map(\.sessionID))
    var sessions = input.sessions.filter { probed.contains($0.id) }
    if sessions.isEmpty { sessions = input.sessions }
    return sessions.sorted { $0.startedNs < $1.startedNs }
}

struct SummaryKey: Hashable {
    var target: Int64
    var hourNs: Nanoseconds
}

/// The (target, hour) summaries of `input` that this report takes as they are.
func exactSummaries(_ input: ReportInput, _ options: ReportOptions) -> Set<SummaryKey> {
    var sessionsByTarget: [Int64: [SessionRecord]] = [:]
    var keys = Set<SummaryKey>()
    for summary in input.summaries {
        if sessionsByTarget[summary.targetID] == nil {
            sessionsByTarget[summary.targetID] = sessionsOfTarget(summary.targetID, input)
        }
        if summaryIsExact(summary, options, targetSessions: sessionsByTarget[summary.targetID]!) {
            keys.insert(SummaryKey(target: summary.targetID, hourNs: summary.hourNs))
        }
    }
    return keys
}

// MARK: - The report

func makeSummaryReport(_ input: ReportInput, _ options: ReportOptions) throws -> Report {
    try validate(options)
    let periods = try epochPeriods(options)
    let selected = try selectTargets(input.targets, options.targets)
    let index = ProbeIndex(input)
    let exact = exactSummaries(input, options)

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
    let results = Mutex([Result<(TargetReport, Bool), Error>?](repeating: nil, count: selected.count))
    DispatchQueue.concurrentPerform(iterations: selected.count) { t in
        let result = Result {
            try summaryTargetReport(selected[t], probes: probesByTarget[t], input: input, index: index,
                                    exact: exact, options: options, periods: periods)
        }
        results.withLock { $0[t] = result }
    }
    var targetReports: [TargetReport] = []
    var approximate = false
    for result in results.withLock({ $0 }) {
        let (report, usedSummaries) = try result!.get()
        targetReports.append(report)
        approximate = approximate || usedSummaries
    }
    var report = Report(since: options.since, until: options.until, epochNs: options.epochNs,
                        timeoutNs: options.timeoutNs, targets: targetReports)
    report.percentilesApproximate = approximate
    return report
}

/// One target's report; true when some period took a summary.
private func summaryTargetReport(
    _ target: TargetRecord, probes all: [ProbeRecord], input: ReportInput, index: ProbeIndex,
    exact: Set<SummaryKey>, options: ReportOptions, periods: [(Nanoseconds, Nanoseconds)]
) throws -> (TargetReport, Bool) {
    var all = all
    if zip(all, all.dropFirst()).contains(where: { $0.sentNs > $1.sentNs }) { all.sort { $0.sentNs < $1.sentNs } }
    let sessions = sessionsOfTarget(target.id, input)
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
    // Coverage as makeReports: only sessions that probed this target (no
    // fallback to every session, which classification has for hand-made input).
    let probed = Set(input.sessionTargets.lazy.filter { $0.targetID == target.id }.map(\.sessionID))
    let covered = coveredIntervals(input.sessions.filter { probed.contains($0.id) }, gaps: input.gaps)

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
    let outages = stitchOutages(classified: classified, hours: used, sessions: sessions, minimum: options.outageMin)
    let report = TargetReport(
        target: target.name, host: target.host,
        addresses: addressesInEffect(input.addresses, target: target.id, options.since, options.until),
        summary: summary, epochs: epochs, outages: outages)
    return (report, approximate)
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
    var n = 0
    var mean = 0.0, m2 = 0.0
    var low: Nanoseconds = .max, high: Nanoseconds = .min
    var jitterSum: Int64 = 0
    var last: Nanoseconds?
    /// Dense: a period's histogram gets tens of hours' bins added (no hashing).
    var histogram = [Int](repeating: 0, count: rttBucketCount)

    mutating func addRTTs(count: Int, mean otherMean: Double, m2 otherM2: Double) {
        // Chan et al.'s pairwise update of mean and M2.
        let total = n + count
        let delta = otherMean - mean
        m2 += otherM2 + delta * delta * Double(n) * Double(count) / Double(total)
        mean += delta * Double(count) / Double(total)
        n = total
    }

    mutating func add(_ probes: ArraySlice<ClassifiedProbe>) {
        var count = 0, localMean = 0.0, localM2 = 0.0
        for probe in probes {
            s.sent += 1
            s.duplicates += Int(probe.duplicates)
            switch probe.status {
            case .received:
                s.received += 1
                let r = probe.rttNs
                count += 1
                let delta = Double(r) - localMean
                localMean += delta / Double(count)
                localM2 += delta * (Double(r) - localMean)
                low = min(low, r); high = max(high, r)
                if let last { jitterSum += abs(r - last) }
                last = r
                histogram[Int(rttBucket(r))] += 1
            case .lost, .unknown:
                s.countUnanswered(probe)
            }
        }
        if count > 0 { addRTTs(count: count, mean: localMean, m2: localM2) }
    }

    mutating func add(_ hour: HourSummary) {
        s.sent += hour.sent; s.received += hour.received; s.lost += hour.lost; s.late += hour.late
        s.duplicates += hour.duplicates; s.unknown += hour.unknown
        for (kind, count) in hour.failures {
            s.errors += count
            s.errorKinds[failureName(kind), default: 0] += count
        }
        guard hour.received > 0 else { return }
        addRTTs(count: hour.received, mean: Double(hour.rttSum) / Double(hour.received), m2: hour.rttM2)
        low = min(low, hour.rttMin); high = max(high, hour.rttMax)
        if let last { jitterSum += abs(hour.firstRTT - last) }
        jitterSum += hour.jitterSum
        last = hour.lastRTT
        for bin in hour.histogram { histogram[Int(bin.bucket)] += bin.count }
    }

    func summary(coverage: Double) -> Summary {
        var summary = s
        summary.coverage = coverage
        let judged = summary.sent - summary.unknown
        if judged > 0 { summary.lossPct = Double(summary.lost) / Double(judged) * 100 }
        guard n > 0 else { return summary }
        // Nearest rank, as the raw path: the bucket holding rank ceil(p/100 * n),
        // its geometric middle kept inside [min, max].
        func percentile(_ p: Int) -> Double {
            let rank = max(1, (p * n + 99) / 100)
            var seen = 0
            for (bucket, count) in histogram.enumerated() where count > 0 {
                seen += count
                if seen >= rank { return min(Double(high), max(Double(low), rttBucketMiddle(Int32(bucket)))) / 1e6 }
            }
            return Double(high) / 1e6
        }
        summary.rtt = RTTStats(
            min: Double(low) / 1e6, avg: mean / 1e6, p50: percentile(50), p90: percentile(90), p99: percentile(99),
            max: Double(high) / 1e6, stddev: (m2 / Double(n)).squareRoot() / 1e6,
            jitter: n >= 2 ? Double(jitterSum) / Double(n - 1) / 1e6 : nil)
        return summary
    }
}

// MARK: - Outages across hours

/// A stretch of the target's probes in time order: a run of raw probes, or a
/// summarized hour, with its lost runs (Store's LostRun, same rule).
private struct Segment {
    var firstNs: Nanoseconds, firstSession: Int64
    var lastNs: Nanoseconds, lastSession: Int64
    var runs: [LostRun]
}

/// findOutages over raw probes and summarized hours: the runs inside each
/// piece are final; a run reaching a piece's last probe joins the run that
/// starts the next piece when their probes are consecutive.
private func stitchOutages(classified: [ClassifiedProbe], hours: [HourSummary], sessions: [SessionRecord], minimum: Int) -> [Outage] {
    var intervals: [Int64: Nanoseconds] = [:]
    for session in sessions { intervals[session.id] = session.intervalNs }
    func interval(_ session: Int64) -> Nanoseconds { session >= 0 ? intervals[session] ?? 0 : 0 }
    func sessionID(_ probe: ClassifiedProbe) -> Int64 { probe.session >= 0 ? sessions[Int(probe.session)].id : -1 }
    func consecutive(_ aNs: Nanoseconds, _ aSession: Int64, _ bNs: Nanoseconds, _ bSession: Int64) -> Bool {
        aSession >= 0 && aSession == bSession && 2 * (bNs - aNs) < 3 * interval(aSession)
    }

    func rawSegment(_ probes: ArraySlice<ClassifiedProbe>) -> Segment? {
        guard let first = probes.first, let lastProbe = probes.last else { return nil }
        var runs: [LostRun] = []
        var start: ClassifiedProbe?, last: ClassifiedProbe?, count = 0
        for probe in probes {
            if let l = last, start != nil {
                if consecutive(l.sentNs, sessionID(l), probe.sentNs, sessionID(probe)) {
                    if probe.status == .lost { count += 1; last = probe; continue }
                    runs.append(LostRun(startNs: start!.sentNs, lastNs: l.sentNs, count: count, endNs: probe.sentNs))
                } else {
                    runs.append(LostRun(startNs: start!.sentNs, lastNs: l.sentNs, count: count, endNs: l.sentNs + interval(sessionID(l))))
                }
                start = nil
            }
            if probe.status == .lost { start = probe; count = 1 }
            last = probe
        }
        if let s = start, let l = last { runs.append(LostRun(startNs: s.sentNs, lastNs: l.sentNs, count: count, endNs: nil)) }
        return Segment(firstNs: first.sentNs, firstSession: sessionID(first),
                       lastNs: lastProbe.sentNs, lastSession: sessionID(lastProbe), runs: runs)
    }

    var segments: [Segment] = []
    var i = 0
    for hour in hours {
        var j = i
        while j < classified.count && classified[j].sentNs < hour.hourNs { j += 1 }
        if let segment = rawSegment(classified[i..<j]) { segments.append(segment) }
        if hour.sent > 0 {
            segments.append(Segment(firstNs: hour.firstSentNs, firstSession: hour.firstSession,
                                    lastNs: hour.lastSentNs, lastSession: hour.lastSession, runs: hour.runs))
        }
        i = j
    }
    if let segment = rawSegment(classified[i...]) { segments.append(segment) }

    var outages: [Outage] = []
    func emit(_ start: Nanoseconds, _ end: Nanoseconds, _ count: Int) {
        if count >= minimum { outages.append(Outage(start: start, end: end, lost: count)) }
    }
    var open: (start: Nanoseconds, count: Int, lastNs: Nanoseconds, lastSession: Int64)?
    var previous: (ns: Nanoseconds, session: Int64)?
    for segment in segments {
        var runs = segment.runs[...]
        if let o = open, let p = previous {
            let joined = consecutive(p.ns, p.session, segment.firstNs, segment.firstSession)
            if joined, let r = runs.first, r.startNs == segment.firstNs {
                runs.removeFirst()
                if let end = r.endNs {
                    emit(o.start, end, o.count + r.count)
                    open = nil
                } else {
                    open = (o.start, o.count + r.count, r.lastNs, segment.lastSession)
                }
            } else {
                emit(o.start, joined ? segment.firstNs : o.lastNs + interval(o.lastSession), o.count)
                open = nil
            }
        }
        for r in runs {
            if let end = r.endNs { emit(r.startNs, end, r.count) } else { open = (r.startNs, r.count, r.lastNs, segment.lastSession) }
        }
        previous = (segment.lastNs, segment.lastSession)
    }
    if let o = open { emit(o.start, o.lastNs + interval(o.lastSession), o.count) }
    return outages
}
