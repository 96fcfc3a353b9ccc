// /metrics' per-hop path counters: for each target and hop (the TTL; the
// target's own probes at the distance they were sent with), the path probes
// sent, answered and forward lost, as the one path judge counts them
// (Store's PathTally), so they add up to what `pingem report` counts for the
// same span.
//
// Invariant (each round counted exactly once), as for the probe counters in
// Metrics.swift: a round is counted when its round time falls below the
// cutoff; counters advance by half-open ranges of round time. At start,
// whole past hours come from their path summaries (PathSummary) where those
// judge as the raw rounds would at the metrics timeout and the target kept
// one address, source and tos for the hour's rounds; other hours, and the
// rest, from raw rounds. Hours whose raw path probes were pruned count from
// their summaries whatever the timeout: nothing better is stored.
import Reports
import Store

/// One series of the per-hop counters.
public struct PathMetricKey: Hashable, Sendable {
    public var labels: MetricLabels
    public var hop: Int
}

/// Running totals of one target's probes at one hop.
public struct PathHopTotals: Sendable, Equatable {
    public var sent: Int64 = 0
    public var answered: Int64 = 0
    public var forwardLost: Int64 = 0
}

extension MetricsState {
    /// Adds `tally`'s hops under `labels`: each hop at its TTL, the
    /// target's probes at the distance they were sent with.
    mutating func addPath(_ tally: PathTally, labels: MetricLabels) {
        for (ttl, hop) in tally.hops {
            pathTotals[PathMetricKey(labels: labels, hop: ttl), default: PathHopTotals()]
                .add(sent: hop.sent, answered: hop.answered, forwardLost: hop.forwardLost)
        }
        for (distance, d) in tally.distances {
            pathTotals[PathMetricKey(labels: labels, hop: distance), default: PathHopTotals()]
                .add(sent: d.target.probed, answered: d.target.answered, forwardLost: d.forwardLost)
        }
    }

    /// Adds the raw rounds with round time in [from, to) of the targets
    /// `only` (nil: all), judged at the metrics timeout.
    mutating func addPathRounds(db: Database, from: Nanoseconds, to: Nanoseconds, only: Set<Int64>?,
                                targets: [TargetRecord], addresses: [Int64: [AddressRecord]],
                                sessions: [Int64: [SessionRecord]]) throws {
        var byTarget: [Int64: [PathProbeRecord]] = [:]
        for probe in try db.pathProbes(targets: only, from: from, to: to) { byTarget[probe.targetID, default: []].append(probe) }
        for target in targets {
            guard let probes = byTarget[target.id] else { continue }
            var groups: [MetricLabels: PathTally] = [:]
            for round in pathRounds(probes, sessions: sessions[target.id] ?? [], timeoutNs: timeoutNs) {
                let labels = labels(ip: address(at: round.roundNs, in: addresses[target.id] ?? []), host: target.host,
                                    target: target.id, at: round.roundNs, sessions: sessions)
                groups[labels, default: PathTally(keepingAnswers: false)].add(round)
            }
            for (labels, tally) in groups { addPath(tally, labels: labels) }
        }
    }

    /// Adds every path summary of an hour ending by `cutoff` (raw rounds
    /// where it cannot answer exactly); returns the end of the last such
    /// hour, nil when there is none. `firstRawNs`: the first raw probe still stored.
    mutating func addSummarizedPaths(db: Database, cutoff: Nanoseconds, firstRawNs: Nanoseconds?, targets: [TargetRecord],
                                     addresses: [Int64: [AddressRecord]], sessions: [Int64: [SessionRecord]]) throws -> Nanoseconds? {
        var end: Nanoseconds?
        var rawHours: [Nanoseconds: Set<Int64>] = [:]
        let byID = Dictionary(targets.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for row in try db.pathSummaryRows(from: Int64.min, to: cutoff - summaryHourNs + 1, targets: nil) {
            guard let target = byID[row.targetID] else { continue }
            end = max(end ?? row.hourNs + summaryHourNs, row.hourNs + summaryHourNs)
            let s = try row.decoded()
            let rows = addresses[target.id] ?? []
            let pruned = firstRawNs.map { s.firstRoundNs < $0 } ?? true
            let oneAddress = !rows.contains { s.firstRoundNs < $0.sinceNs && $0.sinceNs <= s.lastRoundNs }
                && oneLabelSet(target: target.id, s.firstRoundNs, s.lastRoundNs, sessions: sessions)
            guard pruned || (s.judgesAlike(timeoutNs: timeoutNs) && oneAddress) else {
                rawHours[s.hourNs, default: []].insert(target.id)
                continue
            }
            addPath(s.tally, labels: labels(ip: address(at: s.firstRoundNs, in: rows), host: target.host,
                                            target: target.id, at: s.firstRoundNs, sessions: sessions))
        }
        for (hour, ids) in rawHours.sorted(by: { $0.key < $1.key }) {
            try addPathRounds(db: db, from: hour, to: hour + summaryHourNs, only: ids, targets: targets,
                              addresses: addresses, sessions: sessions)
        }
        return end
    }

    /// The per-hop counters in the text format, after the probe counters.
    func renderPaths(_ labels: (MetricLabels, String) -> String) -> String {
        guard !pathTotals.isEmpty else { return "" }
        var out = ""
        let keys = pathTotals.keys.sorted { ($0.labels.host, $0.labels.ip, $0.labels.source, $0.labels.tos, $0.hop)
            < ($1.labels.host, $1.labels.ip, $1.labels.source, $1.labels.tos, $1.hop) }
        func counter(_ name: String, _ help: String, _ value: (PathHopTotals) -> Int64) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for key in keys { out += "\(name)\(labels(key.labels, ",hop=\"\(key.hop)\"")) \(value(pathTotals[key]!))\n" }
        }
        counter("pingem_path_probes_sent_total",
                "Path probes judged per hop (TTL; the target's own probes at their distance).") { $0.sent }
        counter("pingem_path_probes_answered_total",
                "Path probes answered within the timeout per hop (time exceeded from a router, the target's echo reply).") { $0.answered }
        counter("pingem_path_forward_lost_total",
                "Unanswered path probes per hop whose every later probe of the round went unanswered too.") { $0.forwardLost }
        return out
    }
}

extension PathHopTotals {
    mutating func add(sent: Int, answered: Int, forwardLost: Int) {
        self.sent += Int64(sent); self.answered += Int64(answered); self.forwardLost += Int64(forwardLost)
    }
}
