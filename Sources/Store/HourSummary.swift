// Per-hour summaries of one target: what a report needs from a complete,
// aligned UTC hour of raw probes, so that a year is read as 87,600 small rows
// instead of 315 million probes.
//
// Invariants (the report's fast path relies on each; ReportsTests'
// SummaryPropertyTests prove the result equals the raw path):
//   * The probes are judged by the Judge (Judge/Verdict.swift), as Reports
//     judges them, with the fixed timeout `summaryTimeoutNs` (the report default). The stored
//     classification is also the one at any other timeout T when no first
//     reply lies between the two: rtt.max <= T and (minSlowRTT == nil or
//     T < minSlowRTT). Reports checks that, else reads raw.
//   * Counts are exact; RTT sum, min, max and jitter parts are exact integers
//     (ns); M2 (sum of squared deviations) is a Double, merged with Chan's
//     formula; percentiles come from a log histogram whose buckets are 1.5 %
//     wide, so the bucket's geometric middle is within 0.75 % of any value in it.
//   * Lost runs are found with the outage rule of Judge/Outages.swift (same
//     session, next send less than 1.5 intervals later), so outages over several hours are
//     stitched from the runs that touch an hour's first or last probe.
//     Internal runs of a single probe are only counted (`omittedSingleRuns`):
//     outages of 1 probe (--outage-min 1) need raw data.
//   * Summaries are written hour by hour for all targets at once (one
//     transaction per hour): when an hour has a row for any target, every
//     target with probes in that hour has one.

/// An hour: summaries cover [hourNs, hourNs + summaryHourNs).
public let summaryHourNs: Nanoseconds = 3_600_000_000_000
/// The timeout the stored classification uses: the report's default --timeout,
/// so a default report can always use a summary.
public let summaryTimeoutNs: Nanoseconds = 2_000_000_000

/// smokeping_prober's histogram bounds, in ns: 50 µs doubling to 26.2144 s.
public let prometheusBoundsNs: [Nanoseconds] = (0..<20).map { 50_000 << $0 }

/// The smokeping_prober bucket of an RTT: the index of the first bound at or
/// above it, else prometheusBoundsNs.count (+Inf).
public func responseBucket(_ rttNs: Nanoseconds) -> Int {
    prometheusBoundsNs.firstIndex { rttNs <= $0 } ?? prometheusBoundsNs.count
}

/// One target's probes of one hour.
public struct HourSummary: Sendable, Hashable {
    public var targetID: Int64
    public var hourNs: Nanoseconds
    /// Some probe was unknown at summaryTimeoutNs, or had no session: only
    /// the raw path can classify this hour.
    public var rawOnly = false
    public var sent = 0
    public var received = 0
    public var lost = 0
    public var late = 0
    public var duplicates = 0
    public var unknown = 0
    public var failures: [FailureKind: Int] = [:]
    /// Over received probes; its mean is sum / count (what the encoding keeps).
    public var rtt = RTTAccumulator()
    /// The smallest first reply later than summaryTimeoutNs, if any.
    public var minSlowRTT: Nanoseconds?
    /// Among probes without reply or error: the least time between a send and
    /// its session's end (nil: none). At a timeout above it some probe turns
    /// unknown; a session's end only moves later while it runs.
    public var minUnansweredHeadroom: Nanoseconds?
    /// First and last probe of the hour: send time and session id (-1: none).
    public var firstSentNs: Nanoseconds = 0
    public var firstSession: Int64 = -1
    public var lastSentNs: Nanoseconds = 0
    public var lastSession: Int64 = -1
    /// Lost runs, in time order: all those of 2 or more probes, and any that
    /// touches the first or the last probe.
    public var runs: [LostRun] = []
    /// Runs of a single lost probe not in `runs`.
    public var omittedSingleRuns = 0
    /// RTT log histogram: (bucket, count) by bucket, counts > 0 (see rttBucket).
    public var histogram: [HistogramBin] = []
    /// First replies per bucket of smokeping_prober's histogram (index
    /// responseBucket; prometheusBoundsNs.count + 1 counts), which the log
    /// histogram's 1.5 % bins do not align with: /metrics takes them as they
    /// are. Nil in a summary of encoding version 2, written before.
    public var responseBuckets: [Int]?

    public init(targetID: Int64, hourNs: Nanoseconds) {
        self.targetID = targetID; self.hourNs = hourNs
    }

    public var errors: Int { failures.values.reduce(0, +) }
}

// MARK: - Summarizing

/// Summarizes one target's probes of one hour. `probes` in send order, all in
/// [hourNs, hourNs + 1 h); `replies` and `icmpErrors` those of these probes
/// (any order); `sessions` the target's sessions, by start time
/// (sessionsJudging). Judged as Reports judges (see the file header).
public func summarizeHour(
    targetID: Int64, hourNs: Nanoseconds, probes: [ProbeRecord], replies: [ReplyRecord],
    icmpErrors: [ICMPErrorRecord], sessions: [SessionRecord]
) -> HourSummary {
    var summarizer = HourSummarizer(targetID: targetID, hourNs: hourNs, replies: replies,
                                    icmpErrors: icmpErrors, sessions: sessions)
    for probe in probes { summarizer.add(probe) }
    return summarizer.finish()
}

/// `summarizeHour` one probe at a time, so an hour of many targets is
/// summarized while it streams past (the recorder does this every hour: at
/// 1,000 probes/s an hour is 3.6 million probes, 144 MB as arrays of
/// records). Only the hour's replies and errors, which are few, are held.
/// Each probe is judged by the Judge (Verdict.swift) at summaryTimeoutNs.
public struct HourSummarizer {
    private var s: HourSummary
    private var cursor: SessionCursor
    private var replyIndex: [Nanoseconds: ReplyRows] = [:]
    private var errorIndex: [Nanoseconds: ICMPErrorRecord] = [:]
    private var histogram: [Int32: Int] = [:]
    private var runs = LostRunBuilder()
    /// The last probe added: send time and session index (-1: none).
    private var lastProbe: (sentNs: Nanoseconds, session: Int) = (0, -1)
    /// Probes added so far.
    private var index = 0

    public init(targetID: Int64, hourNs: Nanoseconds, replies: [ReplyRecord],
                icmpErrors: [ICMPErrorRecord], sessions: [SessionRecord]) {
        s = HourSummary(targetID: targetID, hourNs: hourNs)
        s.responseBuckets = [Int](repeating: 0, count: prometheusBoundsNs.count + 1)
        cursor = SessionCursor(sessions)
        for reply in replies {
            if replyIndex[reply.sentNs] == nil { replyIndex[reply.sentNs] = ReplyRows(reply.rttNs) } else { replyIndex[reply.sentNs]!.add(reply.rttNs) }
        }
        for error in icmpErrors {
            if let seen = errorIndex[error.sentNs], !error.answersBefore(seen) { continue }
            errorIndex[error.sentNs] = error
        }
    }

    /// Keeps the runs a report may need whole: those of 2 or more probes and
    /// those that touch the hour's first or last probe; counts the others.
    private mutating func keep(_ run: LostRun) {
        if run.count >= 2 || run.startNs == s.firstSentNs || run.endNs == nil {
            s.runs.append(run)
        } else {
            s.omittedSingleRuns += 1
        }
    }

    /// The next probe of the target, in send order.
    public mutating func add(_ probe: ProbeRecord) {
        let session = cursor.session(at: probe.sentNs)
        let sessionEnd = cursor.endNs(session)
        if sessionEnd.map({ $0 < probe.sentNs }) ?? true { s.rawOnly = true }
        let answers = ProbeAnswers(probe, replyRows: replyIndex[probe.sentNs], icmpError: errorIndex[probe.sentNs])
        let verdict = answers.verdict(sentNs: probe.sentNs, sessionEndNs: sessionEnd, timeoutNs: summaryTimeoutNs)
        s.sent += 1
        s.duplicates += answers.duplicates
        switch verdict {
        case .received:
            s.received += 1
            s.rtt.add(answers.firstReplyNs!)
            histogram[rttBucket(answers.firstReplyNs!), default: 0] += 1
            s.responseBuckets![responseBucket(answers.firstReplyNs!)] += 1
        case .late:
            s.lost += 1; s.late += 1
            s.minSlowRTT = min(s.minSlowRTT ?? answers.firstReplyNs!, answers.firstReplyNs!)
        case .lost:
            s.lost += 1
            if answers.failure == nil, let end = sessionEnd {
                s.minUnansweredHeadroom = min(s.minUnansweredHeadroom ?? end - probe.sentNs, end - probe.sentNs)
            }
        case .unknown:
            s.unknown += 1
            s.rawOnly = true
        }
        if verdict.isLost, let failure = answers.failure { s.failures[failure, default: 0] += 1 }

        if index == 0 {
            s.firstSentNs = probe.sentNs
            s.firstSession = session >= 0 ? cursor.sessions[session].id : -1
        }
        index += 1
        if let run = runs.add(sentNs: probe.sentNs, session: Int64(session), intervalNs: cursor.intervalNs(session),
                              lost: verdict.isLost) {
            keep(run)
        }
        lastProbe = (probe.sentNs, session)
    }

    /// The summary of the probes added (the `probes.last` of the batch form
    /// is the last one added).
    public mutating func finish() -> HourSummary {
        if let run = runs.openRun { keep(run) }
        s.histogram = histogram.sorted { $0.key < $1.key }.map { HistogramBin(bucket: $0.key, count: $0.value) }
        if s.rtt.count > 0 { s.rtt.mean = Double(s.rtt.sum) / Double(s.rtt.count) }
        if index > 0 {
            s.lastSentNs = lastProbe.sentNs
            s.lastSession = lastProbe.session >= 0 ? cursor.sessions[lastProbe.session].id : -1
        }
        return s
    }
}

extension HourSummary {
    /// The hour as a stretch of probes whose lost runs join its neighbours'.
    public var stretch: RunStretch {
        RunStretch(firstNs: firstSentNs, firstSession: firstSession, lastNs: lastSentNs, lastSession: lastSession, runs: runs)
    }
}

// MARK: - Encoding

/// Compact encoding: a version byte, then unsigned LEB128 varints (zigzag
/// where a value may be negative), offsets from the hour. About 150 to 250
/// bytes for an hour at 1 probe/s with 20 ms of RTT and 2 ms of jitter.
extension HourSummary {
    /// 3 adds responseBuckets; version 2 (without them) is still read, so
    /// the summaries of hours already pruned keep counting.
    static let encodingVersion: UInt8 = 3

    public func encoded() -> [UInt8] {
        var out: [UInt8] = [HourSummary.encodingVersion]
        func u(_ v: UInt64) {
            var v = v
            while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
            out.append(UInt8(v))
        }
        func i(_ v: Int64) { u(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
        u(rawOnly ? 1 : 0)
        for n in [sent, received, lost, late, duplicates, unknown] { u(UInt64(n)) }
        let kinds = failures.sorted { $0.key.code < $1.key.code }
        u(UInt64(kinds.count))
        for (kind, count) in kinds { i(kind.code); u(UInt64(count)) }
        if received > 0 {
            i(rtt.min); i(rtt.max - rtt.min); i(rtt.sum)
            u(rtt.m2.bitPattern)
            i(rtt.first); i(rtt.last); i(rtt.jitterSum)
            u(UInt64(histogram.count))
            var previous: Int32 = 0
            for (index, bin) in histogram.enumerated() {
                if index == 0 { i(Int64(bin.bucket)) } else { u(UInt64(bin.bucket - previous)) }
                previous = bin.bucket
                u(UInt64(bin.count))
            }
        }
        i(minSlowRTT ?? -1)
        i(minUnansweredHeadroom ?? -1)
        if sent > 0 {
            i(firstSentNs - hourNs); i(firstSession); i(lastSentNs - hourNs); i(lastSession)
        }
        u(UInt64(runs.count))
        for run in runs {
            i(run.startNs - hourNs); u(UInt64(run.count)); i(run.lastNs - run.startNs)
            i(run.endNs.map { $0 - run.lastNs } ?? -1)
        }
        u(UInt64(omittedSingleRuns))
        if let responseBuckets {
            let used = responseBuckets.enumerated().filter { $0.element > 0 }
            i(Int64(used.count))
            for (index, count) in used { u(UInt64(index)); u(UInt64(count)) }
        } else {
            i(-1)
        }
        return out
    }

    public init(targetID: Int64, hourNs: Nanoseconds, encoded bytes: [UInt8]) throws {
        self.init(targetID: targetID, hourNs: hourNs)
        // The varint reading PathSummary's decoding uses (PathSummary.swift).
        var reader = VarintReader(bytes, what: "summary of target \(targetID) at \(hourNs)")
        func corrupt() -> StoreError { reader.corrupt() }
        func u() throws -> UInt64 { try reader.u() }
        func n() throws -> Int { Int(truncatingIfNeeded: try u()) }
        func i() throws -> Int64 { let v = try u(); return Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }
        guard let version = bytes.first, version == 2 || version == HourSummary.encodingVersion else { throw corrupt() }
        rawOnly = try u() != 0
        sent = try n(); received = try n(); lost = try n(); late = try n(); duplicates = try n(); unknown = try n()
        for _ in 0..<(try n()) {
            let kind = FailureKind(code: try i())
            failures[kind] = try n()
        }
        if received > 0 {
            rtt.count = received
            rtt.min = try i(); rtt.max = rtt.min + (try i()); rtt.sum = try i()
            rtt.mean = Double(rtt.sum) / Double(received)
            rtt.m2 = Double(bitPattern: try u())
            rtt.first = try i(); rtt.last = try i(); rtt.jitterSum = try i()
            var bucket: Int32 = 0
            let bins = try n()
            histogram.reserveCapacity(bins)
            for index in 0..<bins {
                if index == 0 { bucket = Int32(truncatingIfNeeded: try i()) } else { bucket += Int32(truncatingIfNeeded: try u()) }
                guard bucket >= 0, bucket < rttBucketCount else { throw corrupt() }
                histogram.append(HistogramBin(bucket: bucket, count: try n()))
            }
        }
        let slow = try i()
        minSlowRTT = slow < 0 ? nil : slow
        let headroom = try i()
        minUnansweredHeadroom = headroom < 0 ? nil : headroom
        if sent > 0 {
            firstSentNs = hourNs + (try i()); firstSession = try i()
            lastSentNs = hourNs + (try i()); lastSession = try i()
        }
        for _ in 0..<(try n()) {
            let start = hourNs + (try i())
            let count = try n()
            let last = start + (try i())
            let end = try i()
            runs.append(LostRun(startNs: start, lastNs: last, count: count, endNs: end < 0 ? nil : last + end))
        }
        omittedSingleRuns = try n()
        if version >= 3, case let used = try i(), used >= 0 {
            var counts = [Int](repeating: 0, count: prometheusBoundsNs.count + 1)
            for _ in 0..<used {
                let index = try n()
                guard index < counts.count else { throw corrupt() }
                counts[index] = try n()
            }
            responseBuckets = counts
        }
        try reader.end()
    }
}
