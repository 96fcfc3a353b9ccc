// The first advance of MetricsState at year scale: whole past hours come from
// their hourly summaries (87,600 rows for a year of 10 targets) instead of
// their raw probes (315 million).
//
// An hour's summary gives the counters exactly when:
//   * Reports' summaryIsExact holds for the hour at the metrics timeout (the
//     same rule the report uses: no first reply between the two timeouts, no
//     probe that turns unknown);
//   * it has counts per Prometheus bucket (encoding version 3), or, written
//     before (version 2), its log histogram (1.5 % bins) puts no bin across a
//     Prometheus bound inside [rtt.min, rtt.max] (a bin holding RTTs on both
//     sides of a bound cannot be split);
//   * the target kept one address, source and tos for the hour (labels are
//     per address, source and tos);
//   * no hour with late replies also had send errors (the summary counts a
//     send error with a late reply, the raw rule counts only lost ones).
// Other hours are read raw, hour by hour, for just the targets concerned.
// ICMP error rows are counted from the icmp_error table (the summary keeps
// only the first error of a lost probe); raw rows are few.
//
// Hours whose raw probes were pruned (prune removes a prefix of the history,
// so: a summary whose first probe is older than the first raw probe) count
// from their summaries whatever the above: their probes as judged at
// summaryTimeoutNs, a version-2 bin across a bound in the bucket of its middle, ICMP
// errors as the lost probes' first errors, all under the address of the
// hour's first probe. Nothing better is stored.
import Reports
import Store

/// Prometheus bounds in ns and the log-histogram bins of the bound and of
/// the next nanosecond: a bin that holds both straddles the bound.
private let boundBins: [(ns: Nanoseconds, bin: Int32, next: Int32)] = prometheusBoundsNs.map { ns in
    (ns, rttBucket(ns), rttBucket(ns + 1))
}

/// The hour's first replies per Prometheus bucket (as bucketCounts), or nil
/// when a summary without them has a bin that straddles a bound within the
/// hour's RTTs and `approximate` is false (then only raw probes tell them apart).
func responseBuckets(_ s: HourSummary, approximate: Bool) -> [Int64]? {
    if let stored = s.responseBuckets { return stored.map { Int64($0) } }
    var counts = [Int64](repeating: 0, count: prometheusBoundsNs.count + 1)
    guard s.received > 0 else { return counts }
    let inside = boundBins.filter { s.rtt.min <= $0.ns && $0.ns < s.rtt.max }
    let below = boundBins.count(where: { $0.ns < s.rtt.min })
    for bin in s.histogram {
        if inside.contains(where: { $0.bin == bin.bucket && $0.next == bin.bucket }) {
            guard approximate else { return nil }
            let middle = Nanoseconds(rttBucketMiddle(bin.bucket).rounded())
            counts[responseBucket(min(max(middle, s.rtt.min), s.rtt.max))] += Int64(bin.count)
            continue
        }
        // All of the bin's RTTs lie on one side of each bound.
        counts[below + inside.count(where: { bin.bucket > $0.bin })] += Int64(bin.count)
    }
    return counts
}

extension ProbeTotals {
    /// Adds an hour's summary but its ICMP errors: `buckets` from responseBuckets.
    mutating func add(_ s: HourSummary, buckets: [Int64]) {
        requests += Int64(s.sent - s.unknown)
        responses += Int64(s.received)
        for (i, count) in buckets.enumerated() { bucketCounts[i] += count }
        if s.received > 0 { responseNsSum += s.rtt.sum }
        duplicates += Int64(s.duplicates)
        lateReplies += Int64(s.late)
        unknown += Int64(s.unknown)
        for (kind, count) in s.failures { if case .send = kind { sendErrors += Int64(count) } }
    }

    /// A pruned hour's ICMP errors: all that is left of them.
    mutating func addICMPErrors(_ s: HourSummary) {
        for (kind, count) in s.failures {
            if case .icmp(let family, let type, _) = kind { icmpErrors["\(family)/\(type)", default: 0] += Int64(count) }
        }
    }
}

extension MetricsState {
    /// Adds every summarized hour ending by `cutoff` (raw where its summary
    /// cannot answer exactly); returns the end of the last summarized hour,
    /// nil when there is none. `firstRawNs`: the first raw probe still stored.
    mutating func addSummarized(db: Database, cutoff: Nanoseconds, firstRawNs: Nanoseconds?, targets: [TargetRecord],
                                addresses: [Int64: [AddressRecord]], sessions: [Int64: [SessionRecord]]) throws -> Nanoseconds? {
        struct Key: Hashable { var target: Int64; var hourNs: Nanoseconds }
        var end: Nanoseconds?
        var fromSummary = Set<Key>()
        var rawHours: [Nanoseconds: Set<Int64>] = [:]
        var totals = self.totals
        for target in targets {
            let rows = addresses[target.id] ?? []
            // Hours starting before cutoff - 1 h + 1 end by the cutoff.
            for s in try db.summaries(from: Int64.min, to: cutoff - summaryHourNs + 1, target: target.id) {
                end = max(end ?? s.hourNs + summaryHourNs, s.hourNs + summaryHourNs)
                let pruned = firstRawNs.map { s.firstSentNs < $0 } ?? true
                let options = ReportOptions(since: s.hourNs, until: s.hourNs + summaryHourNs, epochNs: nil,
                                            timeoutNs: timeoutNs, outageMin: 2)
                let oneAddress = !rows.contains { s.firstSentNs < $0.sinceNs && $0.sinceNs <= s.lastSentNs }
                    && oneLabelSet(target: target.id, s.firstSentNs, s.lastSentNs, sessions: sessions)
                let sendErrorsClear = s.late == 0 || !s.failures.keys.contains { if case .send = $0 { true } else { false } }
                guard let buckets = responseBuckets(s, approximate: pruned),
                      pruned || (summaryIsExact(s, options) && oneAddress && sendErrorsClear) else {
                    rawHours[s.hourNs, default: []].insert(target.id)
                    continue
                }
                let labels = labels(ip: address(at: s.firstSentNs, in: rows), host: target.host, target: target.id,
                                    at: s.firstSentNs, sessions: sessions)
                totals[labels, default: ProbeTotals()].add(s, buckets: buckets)
                if pruned { totals[labels, default: ProbeTotals()].addICMPErrors(s) } else {
                    fromSummary.insert(Key(target: target.id, hourNs: s.hourNs))
                }
            }
        }
        if let end, let firstRawNs, !fromSummary.isEmpty {
            let hosts = Dictionary(targets.map { ($0.id, $0.host) }, uniquingKeysWith: { a, _ in a })
            for error in try db.icmpErrors(from: firstRawNs, to: end, targets: nil) {
                let hour = error.sentNs - ((error.sentNs % summaryHourNs) + summaryHourNs) % summaryHourNs
                guard fromSummary.contains(Key(target: error.targetID, hourNs: hour)) else { continue }
                let labels = labels(ip: address(at: error.sentNs, in: addresses[error.targetID] ?? []),
                                    host: hosts[error.targetID] ?? "", target: error.targetID, at: error.sentNs, sessions: sessions)
                totals[labels, default: ProbeTotals()].icmpErrors["\(error.family)/\(error.type)", default: 0] += 1
            }
        }
        self.totals = totals
        for (hour, ids) in rawHours.sorted(by: { $0.key < $1.key }) {
            try add(db: db, from: hour, to: hour + summaryHourNs, only: ids, targets: targets,
                    addresses: addresses, sessions: sessions)
        }
        return end
    }

    /// True when every session that sent probes in [first, last] gave the
    /// target the same source and tos labels (else the hour is read raw).
    func oneLabelSet(target: Int64, _ first: Nanoseconds, _ last: Nanoseconds, sessions: [Int64: [SessionRecord]]) -> Bool {
        let overlapping = (sessions[target] ?? []).filter { $0.startedNs <= last && $0.endNs >= first }
        return Set(overlapping.map { probedAs.labels(ip: "", host: "", target: target, session: $0) }).count <= 1
    }

    /// The labels of a summarized hour or error: those of the session that
    /// sent its (first) probe.
    func labels(ip: String, host: String, target: Int64, at sentNs: Nanoseconds,
                        sessions: [Int64: [SessionRecord]]) -> MetricLabels {
        var cursor = SessionCursor(sessions[target] ?? [])
        let session = cursor.session(at: sentNs)
        return probedAs.labels(ip: ip, host: host, target: target, session: session >= 0 ? cursor.sessions[session] : nil)
    }
}
