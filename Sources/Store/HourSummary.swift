// Per-hour summaries of one target: what a report needs from a complete,
// aligned UTC hour of raw probes, so that a year is read as 87,600 small rows
// instead of 315 million probes.
//
// Invariants (the report's fast path relies on each; ReportsTests'
// SummaryPropertyTests prove the result equals the raw path):
//   * The probes are classified exactly as Reports classifies them, with the
//     fixed timeout `summaryTimeoutNs` (the report default). The stored
//     classification is also the one at any other timeout T when no first
//     reply lies between the two: rttMax <= T and (minSlowRTT == nil or
//     T < minSlowRTT). Reports checks that, else reads raw.
//   * Counts are exact; RTT sum, min, max and jitter parts are exact integers
//     (ns); M2 (sum of squared deviations) is a Double, merged with Chan's
//     formula; percentiles come from a log histogram whose buckets are 1.5 %
//     wide, so the bucket's geometric middle is within 0.75 % of any value in it.
//   * Lost runs are found with Reports' outage rule (same session, next send
//     less than 1.5 intervals later), so outages over several hours are
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

/// Why a probe failed: a send error (errno, or -1 unresolved) or an ICMP error.
public enum FailureKind: Hashable, Sendable {
    case send(Int32)
    case icmp(family: Int, type: UInt8, code: UInt8)

    /// One integer, for the compact encoding: send errors as themselves
    /// (errno > 0, or -1), ICMP errors above 2^32.
    var code: Int64 {
        switch self {
        case .send(let errno): return Int64(errno)
        case .icmp(let family, let type, let code):
            return (1 << 32) | Int64(family) << 16 | Int64(type) << 8 | Int64(code)
        }
    }

    init(code: Int64) {
        if code >= 1 << 32 {
            self = .icmp(family: Int((code >> 16) & 0xFFFF), type: UInt8((code >> 8) & 0xFF), code: UInt8(code & 0xFF))
        } else {
            self = .send(Int32(truncatingIfNeeded: code))
        }
    }
}

/// A run of consecutive lost probes inside one hour.
public struct LostRun: Sendable, Hashable {
    /// Send time of its first and last lost probe.
    public var startNs: Nanoseconds
    public var lastNs: Nanoseconds
    public var count: Int
    /// Where its outage ends when the run ends inside the hour (the next
    /// probe's send time, or last + one interval when the next probe is not
    /// consecutive); nil when it reaches the hour's last probe (it may go on).
    public var endNs: Nanoseconds?
    public init(startNs: Nanoseconds, lastNs: Nanoseconds, count: Int, endNs: Nanoseconds?) {
        self.startNs = startNs; self.lastNs = lastNs; self.count = count; self.endNs = endNs
    }
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
    /// Over received probes (ns); meaningful when received > 0.
    public var rttMin: Nanoseconds = 0
    public var rttMax: Nanoseconds = 0
    public var rttSum: Int64 = 0
    /// Sum of squared deviations from the mean (ns^2).
    public var rttM2: Double = 0
    public var firstRTT: Nanoseconds = 0
    public var lastRTT: Nanoseconds = 0
    /// Sum of |r_i - r_(i-1)| over consecutive received probes (received - 1 pairs).
    public var jitterSum: Int64 = 0
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

    public init(targetID: Int64, hourNs: Nanoseconds) {
        self.targetID = targetID; self.hourNs = hourNs
    }

    public var errors: Int { failures.values.reduce(0, +) }
}

// MARK: - Histogram buckets

public struct HistogramBin: Sendable, Hashable {
    public var bucket: Int32
    public var count: Int
    public init(bucket: Int32, count: Int) { self.bucket = bucket; self.count = count }
}

/// Buckets run from 0 to below this (RTTs up to 2^63 ns).
public let rttBucketCount = 3000

/// Bucket width ratio: 1.5 % per bucket, so the geometric middle of a bucket
/// is within sqrt(1.015) - 1 = 0.75 % of any value in it (the issue asks 1 %).
let rttBucketLogBase = 0.014888612493750654  // ln(1.015)

/// The bucket of an RTT in ns (values below 1 ns share bucket 0).
public func rttBucket(_ rttNs: Nanoseconds) -> Int32 {
    guard rttNs > 1 else { return 0 }
    return Int32((Double(rttNs).logOf() / rttBucketLogBase).rounded(.down))
}

/// The geometric middle of a bucket, in ns.
public func rttBucketMiddle(_ bucket: Int32) -> Double {
    ((Double(bucket) + 0.5) * rttBucketLogBase).expOf()
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Double {
    fileprivate func logOf() -> Double { log(self) }
    fileprivate func expOf() -> Double { exp(self) }
}

// MARK: - Summarizing

/// Summarizes one target's probes of one hour. `probes` in send order, all in
/// [hourNs, hourNs + 1 h); `replies` and `icmpErrors` those of these probes
/// (any order); `sessions` the target's sessions, by start time. Mirrors
/// Reports' classify and findOutages (see the file header).
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
public struct HourSummarizer {
    private var s: HourSummary
    private let sessions: [SessionRecord]
    private var replyIndex: [Nanoseconds: (first: Nanoseconds, count: Int)] = [:]
    private var errorIndex: [Nanoseconds: ICMPErrorRecord] = [:]
    private var mean = 0.0
    private var histogram: [Int32: Int] = [:]
    private var latest = -1
    private var previousRTT: Nanoseconds?
    /// Index of the current lost run's first probe in the hour (-1: none).
    private var runStart = -1
    private var runCount = 0
    private var runFirstNs: Nanoseconds = 0
    private var lastProbe: (sentNs: Nanoseconds, session: Int) = (0, -1)
    /// Probes added so far.
    private var index = 0

    public init(targetID: Int64, hourNs: Nanoseconds, replies: [ReplyRecord],
                icmpErrors: [ICMPErrorRecord], sessions: [SessionRecord]) {
        s = HourSummary(targetID: targetID, hourNs: hourNs)
        self.sessions = sessions
        for reply in replies {
            if let seen = replyIndex[reply.sentNs] {
                replyIndex[reply.sentNs] = (min(seen.first, reply.rttNs), seen.count + 1)
            } else {
                replyIndex[reply.sentNs] = (reply.rttNs, 1)
            }
        }
        for error in icmpErrors {
            if let seen = errorIndex[error.sentNs], seen.rttNs <= error.rttNs { continue }
            errorIndex[error.sentNs] = error
        }
    }

    private func interval(_ session: Int) -> Nanoseconds { session >= 0 ? sessions[session].intervalNs : 0 }

    private func consecutive(_ a: (sentNs: Nanoseconds, session: Int), _ b: (sentNs: Nanoseconds, session: Int)) -> Bool {
        a.session >= 0 && a.session == b.session && 2 * (b.sentNs - a.sentNs) < 3 * interval(a.session)
    }

    private mutating func closeRun(end: Nanoseconds?) {
        if runCount >= 2 || runStart == 0 || end == nil {
            s.runs.append(LostRun(startNs: runFirstNs, lastNs: lastProbe.sentNs, count: runCount, endNs: end))
        } else {
            s.omittedSingleRuns += 1
        }
        runStart = -1; runCount = 0
    }

    /// The next probe of the target, in send order.
    public mutating func add(_ probe: ProbeRecord) {
        let i = index
        index += 1
        while latest + 1 < sessions.count && sessions[latest + 1].startedNs <= probe.sentNs { latest += 1 }
        var session = latest
        if session >= 0 && sessions[session].endNs < probe.sentNs {
            var earlier = session - 1
            while earlier >= 0 && sessions[earlier].endNs < probe.sentNs { earlier -= 1 }
            if earlier >= 0 { session = earlier }
        }
        if session < 0 || sessions[session].endNs < probe.sentNs { s.rawOnly = true }

        var first = probe.rttNs
        var replyCount = probe.rttNs == nil ? 0 : 1
        if let extra = replyIndex[probe.sentNs] {
            first = min(first ?? extra.first, extra.first)
            replyCount += extra.count
        }
        var failure: FailureKind?
        if let sendError = probe.sendError {
            failure = .send(sendError)
        } else if let icmp = errorIndex[probe.sentNs] {
            failure = .icmp(family: icmp.family, type: icmp.type, code: icmp.code)
        }
        s.sent += 1
        s.duplicates += max(0, replyCount - 1)
        var isLost = false
        if let first, first <= summaryTimeoutNs {
            s.received += 1
            if s.received == 1 {
                s.rttMin = first; s.rttMax = first; s.firstRTT = first
            } else {
                s.rttMin = min(s.rttMin, first); s.rttMax = max(s.rttMax, first)
            }
            if let previousRTT { s.jitterSum += abs(first - previousRTT) }
            previousRTT = first
            s.lastRTT = first
            s.rttSum += first
            // Welford: exact enough in Double for nanosecond RTTs.
            let delta = Double(first) - mean
            mean += delta / Double(s.received)
            s.rttM2 += delta * (Double(first) - mean)
            histogram[rttBucket(first), default: 0] += 1
        } else if let first {
            s.lost += 1; s.late += 1; isLost = true
            s.minSlowRTT = min(s.minSlowRTT ?? first, first)
            if let failure { s.failures[failure, default: 0] += 1 }
        } else if let failure {
            s.lost += 1; isLost = true
            s.failures[failure, default: 0] += 1
        } else if session < 0 || probe.sentNs + summaryTimeoutNs > sessions[session].endNs {
            s.unknown += 1
            s.rawOnly = true
        } else {
            s.lost += 1; isLost = true
            let headroom = sessions[session].endNs - probe.sentNs
            s.minUnansweredHeadroom = min(s.minUnansweredHeadroom ?? headroom, headroom)
        }

        let current = (sentNs: probe.sentNs, session: session)
        if i == 0 {
            s.firstSentNs = probe.sentNs
            s.firstSession = session >= 0 ? sessions[session].id : -1
        }
        if runStart >= 0 {
            if consecutive(lastProbe, current) {
                if isLost { runCount += 1; lastProbe = current; return }
                closeRun(end: probe.sentNs)
            } else {
                closeRun(end: lastProbe.sentNs + interval(lastProbe.session))
            }
        }
        if isLost { runStart = i; runCount = 1; runFirstNs = probe.sentNs }
        lastProbe = current
    }

    /// The summary of the probes added (the `probes.last` of the batch form
    /// is the last one added).
    public mutating func finish() -> HourSummary {
        if runStart >= 0 { closeRun(end: nil) }
        s.histogram = histogram.sorted { $0.key < $1.key }.map { HistogramBin(bucket: $0.key, count: $0.value) }
        if index > 0 {
            s.lastSentNs = lastProbe.sentNs
            s.lastSession = lastProbe.session >= 0 ? sessions[lastProbe.session].id : -1
        }
        return s
    }
}

// MARK: - Encoding

/// Compact encoding: a version byte, then unsigned LEB128 varints (zigzag
/// where a value may be negative), offsets from the hour. About 150 to 250
/// bytes for an hour at 1 probe/s with 20 ms of RTT and 2 ms of jitter.
extension HourSummary {
    static let encodingVersion: UInt8 = 2

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
            i(rttMin); i(rttMax - rttMin); i(rttSum)
            u(rttM2.bitPattern)
            i(firstRTT); i(lastRTT); i(jitterSum)
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
        return out
    }

    public init(targetID: Int64, hourNs: Nanoseconds, encoded bytes: [UInt8]) throws {
        self.init(targetID: targetID, hourNs: hourNs)
        var at = 0
        func corrupt() -> StoreError {
            StoreError(resultCode: .corrupt, message: "summary of target \(targetID) at \(hourNs) cannot be decoded", sql: nil)
        }
        func u() throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard at < bytes.count, shift < 64 else { throw corrupt() }
                let b = bytes[at]; at += 1
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return v }
                shift += 7
            }
        }
        func n() throws -> Int { Int(truncatingIfNeeded: try u()) }
        func i() throws -> Int64 { let v = try u(); return Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }
        guard bytes.first == HourSummary.encodingVersion else { throw corrupt() }
        at = 1
        rawOnly = try u() != 0
        sent = try n(); received = try n(); lost = try n(); late = try n(); duplicates = try n(); unknown = try n()
        for _ in 0..<(try n()) {
            let kind = FailureKind(code: try i())
            failures[kind] = try n()
        }
        if received > 0 {
            rttMin = try i(); rttMax = rttMin + (try i()); rttSum = try i()
            rttM2 = Double(bitPattern: try u())
            firstRTT = try i(); lastRTT = try i(); jitterSum = try i()
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
        guard at == bytes.count else { throw corrupt() }
    }
}
