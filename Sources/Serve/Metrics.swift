// Prometheus /metrics with smokeping_prober's names, labels and buckets, so
// its rules and dashboards work unchanged, computed from the database so the
// values survive a restart of serve.
//
// Invariant (each probe counted exactly once): a probe is counted when its
// sent_ns falls below the cutoff `now - timeout - settle`. By then its first
// reply is either in the database (the recorder commits at least every few
// seconds; `settle` covers that) or it never came in time. Counters advance by
// whole half-open ranges [previous cutoff, new cutoff) of sent_ns, so no probe
// is in two ranges. A reply arriving later than timeout + settle after its
// probe is not counted anywhere (its probe already counted as lost).
// At start the totals of whole past hours come from their hourly summaries
// (MetricsFromSummaries.swift), the rest from raw probes a day at a time;
// after that a scrape reads only the probes sent since the previous cutoff.
// Path rounds advance alike, by round time (MetricsPaths.swift).
import Foundation
import Reports
import Store

/// smokeping_prober's buckets: 50 µs doubling to 26.2144 s (20 bounds), as
/// written; probes are put in them by Store's responseBucket (ns).
public let responseBucketsSeconds: [Double] = prometheusBoundsNs.map { Double($0) / 1e9 }

/// Labels of one probed address, as smokeping_prober names them.
public struct MetricLabels: Hashable, Sendable {
    public var ip: String
    public var host: String
    public var source: String = ""
    public var tos: String = "0"
}

/// The `source` and `tos` labels of each session's targets, from their
/// session_target rows: the --source address (else the --interface name,
/// which keeps two uplinks' series apart; else empty) and the TOS byte in
/// decimal ("0" when not set), as smokeping_prober writes them.
struct ProbedAsLabels {
    private var rows: [Int64: [Int64: (source: String, tos: String)]] = [:]

    init(_ records: [SessionTargetRecord] = []) {
        for r in records {
            rows[r.targetID, default: [:]][r.sessionID] = (r.source ?? r.interface ?? "", String(r.tos ?? 0))
        }
    }

    /// The labels of an address of a target, in `session` (nil: none).
    func labels(ip: String, host: String, target: Int64, session: SessionRecord?) -> MetricLabels {
        let row = session.flatMap { rows[target]?[$0.id] }
        return MetricLabels(ip: ip, host: host, source: row?.source ?? "", tos: row?.tos ?? "0")
    }
}

/// Running totals for one (target, address).
public struct ProbeTotals: Sendable, Equatable {
    /// Probes judged: answered, lost or failed to send (not `unknown`).
    public var requests: Int64 = 0
    /// First replies within the timeout, per bucket (not cumulative) plus +Inf.
    public var bucketCounts = [Int64](repeating: 0, count: 21)
    public var responses: Int64 = 0
    /// Sum of the first replies' RTTs, ns: exact, as a summary's rtt.sum.
    public var responseNsSum: Int64 = 0
    public var duplicates: Int64 = 0
    public var sendErrors: Int64 = 0
    /// Replies later than the timeout (the probe counts as lost).
    public var lateReplies: Int64 = 0
    /// Probes without any answer whose recorder stopped before their timeout.
    public var unknown: Int64 = 0
    /// ICMP error rows by "family/type".
    public var icmpErrors: [String: Int64] = [:]
}

/// Per-target totals, advanced on each scrape. Not Sendable on purpose: the
/// server keeps it inside a Mutex.
public struct MetricsState {
    public let timeoutNs: Nanoseconds
    public let settleNs: Nanoseconds
    /// Probes with sent_ns < cutoff are in `totals`.
    public private(set) var cutoffNs: Nanoseconds?
    public internal(set) var totals: [MetricLabels: ProbeTotals] = [:]
    /// Per target and hop: path rounds with round_ns < cutoff.
    public internal(set) var pathTotals: [PathMetricKey: PathHopTotals] = [:]
    /// Latest session, for pingem_recorder_up and the start time.
    public private(set) var latestSession: SessionRecord?
    /// source and tos of every session's targets, read again each advance.
    var probedAs = ProbedAsLabels()

    public init(timeoutNs: Nanoseconds = 2_000_000_000, settleNs: Nanoseconds = 5_000_000_000) {
        self.timeoutNs = timeoutNs; self.settleNs = settleNs
    }

    /// Adds the probes sent in [cutoff, now - timeout - settle) from `db`.
    public mutating func advance(db: Database, now: Nanoseconds) throws {
        let newCutoff = now - timeoutNs - settleNs
        let targets = try db.targets()
        var addresses: [Int64: [AddressRecord]] = [:]
        for target in targets { addresses[target.id] = try db.addresses(target: target.id) }
        let sessions = try db.sessions(overlapping: Int64.min, Int64.max)
        latestSession = sessions.last
        // Each probe is judged with its target's sessions, as a report judges it.
        let sessionTargets = try db.sessionTargets(sessions: sessions.map(\.id))
        probedAs = ProbedAsLabels(sessionTargets)
        let judging = Dictionary(uniqueKeysWithValues: targets.map {
            ($0.id, sessionsJudging($0.id, sessions: sessions, sessionTargets: sessionTargets))
        })
        var from = cutoffNs ?? Int64.min
        var pathFrom = from
        if cutoffNs == nil {
            // The first run: start at the first probe, not at the dawn of time.
            var first: Nanoseconds?
            do {
                // forEachProbe cannot stop early; a throw ends the scan.
                try db.forEachProbe(from: Int64.min, to: newCutoff, targets: nil) { probe in
                    first = probe.sentNs
                    throw FirstProbeFound()
                }
            } catch is FirstProbeFound {}
            let summarizedEnd = try addSummarized(db: db, cutoff: newCutoff, firstRawNs: first, targets: targets,
                                                  addresses: addresses, sessions: judging)
            from = max(first ?? newCutoff, summarizedEnd ?? Int64.min)
            let pathsEnd = try addSummarizedPaths(db: db, cutoff: newCutoff, firstRawNs: first, targets: targets,
                                                  addresses: addresses, sessions: judging)
            pathFrom = max(first ?? newCutoff, pathsEnd ?? Int64.min)
        }
        let day: Nanoseconds = 86_400 * 1_000_000_000
        while from < newCutoff {
            let to = min(newCutoff, from > newCutoff - day ? newCutoff : from + day)
            try add(db: db, from: from, to: to, only: nil, targets: targets, addresses: addresses, sessions: judging)
            from = to
        }
        while pathFrom < newCutoff {
            let to = min(newCutoff, pathFrom > newCutoff - day ? newCutoff : pathFrom + day)
            try addPathRounds(db: db, from: pathFrom, to: to, only: nil, targets: targets, addresses: addresses,
                              sessions: judging)
            pathFrom = to
        }
        cutoffNs = max(cutoffNs ?? newCutoff, newCutoff)
    }

    /// Adds the raw probes sent in [from, to) of the targets `only` (nil: all).
    mutating func add(db: Database, from: Nanoseconds, to: Nanoseconds, only: Set<Int64>?, targets: [TargetRecord],
                      addresses: [Int64: [AddressRecord]], sessions: [Int64: [SessionRecord]]) throws {
        let hosts = Dictionary(targets.map { ($0.id, $0.host) }, uniquingKeysWith: { a, _ in a })
        struct Key: Hashable { var sent: Int64; var target: Int64 }
        var replies: [Key: ReplyRows] = [:]
        for reply in try db.replies(from: from, to: to, targets: only) {
            let key = Key(sent: reply.sentNs, target: reply.targetID)
            if replies[key] == nil { replies[key] = ReplyRows(reply.rttNs) } else { replies[key]!.add(reply.rttNs) }
        }
        var errors: [Key: [ICMPErrorRecord]] = [:]
        for error in try db.icmpErrors(from: from, to: to, targets: only) {
            errors[Key(sent: error.sentNs, target: error.targetID), default: []].append(error)
        }
        var cursors: [Int64: SessionCursor] = [:]
        let timeout = timeoutNs
        var totals = self.totals
        let probedAs = self.probedAs
        try db.forEachProbe(from: from, to: to, targets: only) { probe in
            let key = Key(sent: probe.sentNs, target: probe.targetID)
            var cursor = cursors[probe.targetID] ?? SessionCursor(sessions[probe.targetID] ?? [])
            let session = cursor.session(at: probe.sentNs)
            cursors[probe.targetID] = cursor
            let labels = probedAs.labels(
                ip: address(at: probe.sentNs, in: addresses[probe.targetID] ?? []), host: hosts[probe.targetID] ?? "",
                target: probe.targetID, session: session >= 0 ? cursor.sessions[session] : nil)
            var t = totals[labels] ?? ProbeTotals()
            let probeErrors = errors[key] ?? []
            for error in probeErrors { t.icmpErrors["\(error.family)/\(error.type)", default: 0] += 1 }
            // Which ICMP error is first does not matter here: only that one came.
            let answers = ProbeAnswers(probe, replyRows: replies[key], icmpError: probeErrors.first)
            let verdict = answers.verdict(sentNs: probe.sentNs, sessionEndNs: cursor.endNs(session), timeoutNs: timeout)
            t.duplicates += Int64(answers.duplicates)
            if verdict != .unknown { t.requests += 1 }
            switch verdict {
            case .received:
                t.responses += 1
                t.responseNsSum += answers.firstReplyNs!
                t.bucketCounts[responseBucket(answers.firstReplyNs!)] += 1
            case .late: t.lateReplies += 1
            case .lost: if probe.sendError != nil { t.sendErrors += 1 }
            case .unknown: t.unknown += 1
            }
            totals[labels] = t
        }
        self.totals = totals
    }

    /// The Prometheus text exposition (format 0.0.4).
    public func render(now: Nanoseconds, recorderUpWithinNs: Nanoseconds = 10_000_000_000) -> String {
        var out = ""
        let keys = totals.keys.sorted { ($0.host, $0.ip) < ($1.host, $1.ip) }
        func labels(_ l: MetricLabels, _ extra: String = "") -> String {
            "{host=\(quoted(l.host)),ip=\(quoted(l.ip)),source=\(quoted(l.source)),tos=\(quoted(l.tos))\(extra)}"
        }
        func counter(_ name: String, _ help: String, _ value: (ProbeTotals) -> Int64) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for key in keys { out += "\(name)\(labels(key)) \(value(totals[key]!))\n" }
        }
        counter("smokeping_requests_total", "Number of ping probes judged (answered, lost or not sent).") { $0.requests }
        let h = "smokeping_response_duration_seconds"
        out += "# HELP \(h) A histogram of latencies for ping responses.\n# TYPE \(h) histogram\n"
        for key in keys {
            let t = totals[key]!
            var cumulative: Int64 = 0
            for (i, bound) in responseBucketsSeconds.enumerated() {
                cumulative += t.bucketCounts[i]
                out += "\(h)_bucket\(labels(key, ",le=\"\(number(bound))\"")) \(cumulative)\n"
            }
            out += "\(h)_bucket\(labels(key, ",le=\"+Inf\"")) \(t.responses)\n"
            out += "\(h)_sum\(labels(key)) \(number(Double(t.responseNsSum) / 1e9))\n"
            out += "\(h)_count\(labels(key)) \(t.responses)\n"
        }
        counter("smokeping_response_duplicates_total", "The number of duplicated response packets.") { $0.duplicates }
        counter("smokeping_send_errors_total", "The number of errors when sending ping packets.") { $0.sendErrors }
        counter("pingem_late_replies_total", "Probes whose first reply came after the timeout (counted as lost).") { $0.lateReplies }
        counter("pingem_unknown_probes_total", "Probes not judged: the recorder stopped before their timeout.") { $0.unknown }
        out += "# HELP pingem_icmp_errors_total ICMP errors quoting a probe, by family (4 or 6) and ICMP type.\n"
        out += "# TYPE pingem_icmp_errors_total counter\n"
        for key in keys {
            for (kind, count) in totals[key]!.icmpErrors.sorted(by: { $0.key < $1.key }) {
                let parts = kind.split(separator: "/")
                out += "pingem_icmp_errors_total\(labels(key, ",family=\"\(parts[0])\",type=\"\(parts[1])\"")) \(count)\n"
            }
        }
        out += renderPaths(labels)
        let up = latestSession.map { $0.stoppedNs == nil && now - $0.heartbeatNs <= recorderUpWithinNs } ?? false
        out += "# HELP pingem_recorder_up 1 while the latest recorder session is running and recently committed.\n"
        out += "# TYPE pingem_recorder_up gauge\npingem_recorder_up \(up ? 1 : 0)\n"
        if let session = latestSession {
            out += "# HELP pingem_session_start_time_seconds Start of the latest recorder session, Unix seconds.\n"
            out += "# TYPE pingem_session_start_time_seconds gauge\n"
            out += "pingem_session_start_time_seconds \(number(Double(session.startedNs) / 1e9))\n"
        }
        return out
    }
}

private struct FirstProbeFound: Error {}

/// The address a probe sent at `sentNs` went to: the latest address row at
/// or before it.
func address(at sentNs: Nanoseconds, in rows: [AddressRecord]) -> String {
    var found = rows.first?.address ?? ""
    for row in rows where row.sinceNs <= sentNs { found = row.address }
    return found
}


/// A label value in the text format: backslash, quote and newline escaped.
func quoted(_ value: String) -> String {
    var out = "\""
    for c in value {
        switch c {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        default: out.append(c)
        }
    }
    return out + "\""
}

/// Shortest decimal that reads back as the same Double (Swift's description).
func number(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return "\(value)"
}
