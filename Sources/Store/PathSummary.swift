// Per-hour path summaries of one target: an hour's path rounds as the one
// judge tallies them (Judge/PathTally.swift), so that a report of a year
// reads 87,600 small rows instead of 100 million path probes.
//
// Invariants (the report's summary path relies on each; ReportsTests'
// PathSummaryPropertyTests prove its path equals the raw path's):
//   * The rounds are those whose round time lies in the hour, judged by
//     pathRounds at summaryTimeoutNs, like HourSummary's probes. The stored
//     judgement is also the one at a timeout T when no answer lies between
//     the two (maxTimelyRTT <= T < minSlowRTT) and no unanswered probe turns
//     unknown (T <= minUnansweredHeadroom); a round left out as unknown, or
//     a probe without a session, makes the hour rawOnly.
//   * Counts are exact; RTTs are an RTTAccumulator and a 1.5 % log
//     histogram per hop, as in HourSummary.
//   * `lostRounds` keeps, of every round that lost the target, what `where`
//     reads (which hops answered, whether the target's probe was sent): an
//     outage's `where` is judged on the rounds of its own minutes, which an
//     hour's counts cannot give. An hour without loss keeps none.
//   * Written with the hour's HourSummary rows, in the same transaction, for
//     every target with an hour summary or a round in the hour (an empty one
//     without rounds): an hour summary without path summaries beside it was
//     written by a build before them.

/// One target's path rounds of one hour.
public struct PathSummary: Sendable, Hashable {
    public var targetID: Int64
    public var hourNs: Nanoseconds
    /// Some round was unknown at summaryTimeoutNs, or some probe had no
    /// session: only the raw rounds can judge this hour.
    public var rawOnly = false
    /// The hour's rounds, RTTs mergeable (no exactRTTs).
    public var tally = PathTally()
    /// The rounds that lost the target, in round order, each probe only
    /// answered or lost (no RTT, no address) and never-sent for the target's.
    public var lostRounds: [PathRound] = []
    /// The largest RTT of an answer within summaryTimeoutNs, and the smallest
    /// of one after it (nil: none).
    public var maxTimelyRTT: Nanoseconds?
    public var minSlowRTT: Nanoseconds?
    /// Among sent probes without an answer: the least time between a send
    /// and its session's end (nil: none).
    public var minUnansweredHeadroom: Nanoseconds?
    /// The first and last round of the hour (hourNs when none).
    public var firstRoundNs: Nanoseconds
    public var lastRoundNs: Nanoseconds

    public init(targetID: Int64, hourNs: Nanoseconds) {
        self.targetID = targetID; self.hourNs = hourNs
        firstRoundNs = hourNs; lastRoundNs = hourNs
    }

    /// Whether the stored judgement is the one at `timeoutNs` (see the file header).
    public func judgesAlike(timeoutNs: Nanoseconds) -> Bool {
        if rawOnly { return false }
        if let timely = maxTimelyRTT, timely > timeoutNs { return false }
        if let slow = minSlowRTT, slow <= timeoutNs { return false }
        if let headroom = minUnansweredHeadroom, timeoutNs > headroom { return false }
        return true
    }
}

/// A path summary as stored: decoded where it is added up, so that a year
/// of them stays its encoded size in memory (about 400 bytes an hour).
public struct PathSummaryRow: Sendable, Hashable {
    public var targetID: Int64
    public var hourNs: Nanoseconds
    public var data: [UInt8]
    public init(targetID: Int64, hourNs: Nanoseconds, data: [UInt8]) {
        self.targetID = targetID; self.hourNs = hourNs; self.data = data
    }
    public init(_ summary: PathSummary) {
        self.init(targetID: summary.targetID, hourNs: summary.hourNs, data: summary.encoded())
    }
    public func decoded() throws -> PathSummary { try PathSummary(targetID: targetID, hourNs: hourNs, encoded: data) }

    /// PathSummary.judgesAlike, from the encoding's first fields only (a
    /// report asks it of every hour of its window); false when damaged.
    public func judgesAlike(timeoutNs: Nanoseconds) -> Bool {
        var r = VarintReader(data, what: "")
        guard data.first == PathSummary.encodingVersion, let rawOnly = try? r.u(), rawOnly == 0,
              let timely = try? r.i(), let slow = try? r.i(), let headroom = try? r.i() else { return false }
        var s = PathSummary(targetID: targetID, hourNs: hourNs)
        s.maxTimelyRTT = timely < 0 ? nil : timely
        s.minSlowRTT = slow < 0 ? nil : slow
        s.minUnansweredHeadroom = headroom < 0 ? nil : headroom
        return s.judgesAlike(timeoutNs: timeoutNs)
    }
}

extension PathTally {
    /// Every hop's RTTs as an accumulator and histogram.
    public mutating func mergeable() {
        for ttl in hops.keys { hops[ttl]!.mergeable() }
        target.mergeable()
    }
}

// MARK: - Summarizing

/// Summarizes one target's path probes of the rounds in [hourNs, hourNs + 1 h)
/// (any order); `sessions` the target's, by start (sessionsJudging).
public func summarizePathHour(targetID: Int64, hourNs: Nanoseconds, probes: [PathProbeRecord],
                              sessions: [SessionRecord]) -> PathSummary {
    var s = PathSummary(targetID: targetID, hourNs: hourNs)
    let rounds = pathRounds(probes, sessions: sessions, timeoutNs: summaryTimeoutNs)
    if Set(probes.map(\.roundNs)).count != rounds.count { s.rawOnly = true }
    var cursor = SessionCursor(sessions)
    for record in probes.sorted(by: { $0.sentNs < $1.sentNs }) {
        let end = cursor.endNs(cursor.session(at: record.sentNs))
        if end.map({ $0 < record.sentNs }) ?? true { s.rawOnly = true }
        if record.sendError != nil { continue }
        if let rtt = record.rttNs {
            if rtt <= summaryTimeoutNs { s.maxTimelyRTT = max(s.maxTimelyRTT ?? rtt, rtt) } else {
                s.minSlowRTT = min(s.minSlowRTT ?? rtt, rtt)
            }
        } else if let end {
            s.minUnansweredHeadroom = min(s.minUnansweredHeadroom ?? end - record.sentNs, end - record.sentNs)
        }
    }
    s.tally = PathTally(rounds)
    s.tally.mergeable()
    s.lostRounds = rounds.filter { $0.target.map { !$0.answered } ?? false }.map(\.whereEvidence)
    if let first = rounds.first, let last = rounds.last { s.firstRoundNs = first.roundNs; s.lastRoundNs = last.roundNs }
    return s
}

extension PathRound {
    /// What `where` reads of a round: which probes answered, and whether the
    /// target's was sent.
    var whereEvidence: PathRound {
        PathRound(roundNs: roundNs,
                  hops: hops.map { PathRoundProbe(ttl: $0.ttl, sentNs: roundNs, verdict: $0.answered ? .received : .lost) },
                  target: target.map { PathRoundProbe(ttl: $0.ttl, sentNs: roundNs, verdict: $0.answered ? .received : .lost,
                                                      notSent: $0.notSent) })
    }
}

// MARK: - Encoding

/// Compact encoding: a version byte, then unsigned LEB128 varints (zigzag
/// where a value may be negative), times as offsets from the hour. About
/// 25 bytes per hop and hour for a path that answers from one address.
extension PathSummary {
    static let encodingVersion: UInt8 = 1

    public func encoded() -> [UInt8] {
        var w = VarintWriter(first: PathSummary.encodingVersion)
        w.u(rawOnly ? 1 : 0)
        for v in [maxTimelyRTT, minSlowRTT, minUnansweredHeadroom] { w.i(v ?? -1) }
        w.i(firstRoundNs - hourNs); w.i(lastRoundNs - hourNs)
        w.u(tally.rounds)
        w.u(tally.hops.count)
        for ttl in tally.hops.keys.sorted() { w.u(ttl); w.hop(tally.hops[ttl]!, hourNs: hourNs) }
        w.hop(tally.target, hourNs: hourNs)
        w.u(tally.distances.count)
        for (ttl, d) in tally.distances.sorted(by: { $0.key < $1.key }) {
            w.u(ttl); w.u(d.rounds); w.i(d.lastNs - hourNs)
            w.u(d.target.answered); w.u(d.forwardLost)
        }
        w.u(tally.lostRounds); w.u(tally.lostNotSent)
        for counts in [tally.lost, tally.reached] {
            w.u(counts.count)
            for (ttl, c) in counts.sorted(by: { $0.key < $1.key }) { w.u(ttl); w.u(c.probed); w.u(c.answered); w.u(c.lostFrom) }
        }
        w.u(lostRounds.count)
        var previous = hourNs
        for round in lostRounds {
            w.u(Int(round.roundNs - previous)); previous = round.roundNs
            w.u(round.target?.ttl ?? 0); w.u(round.target?.notSent == true ? 1 : 0)
            w.u(round.hops.count)
            for hop in round.hops { w.u(hop.ttl); w.u(hop.answered ? 1 : 0) }
        }
        return w.bytes
    }

    public init(targetID: Int64, hourNs: Nanoseconds, encoded bytes: [UInt8]) throws {
        self.init(targetID: targetID, hourNs: hourNs)
        var r = VarintReader(bytes, what: "path summary of target \(targetID) at \(hourNs)")
        guard bytes.first == PathSummary.encodingVersion else { throw r.corrupt() }
        rawOnly = try r.n() != 0
        func optional() throws -> Nanoseconds? { let v = try r.i(); return v < 0 ? nil : v }
        maxTimelyRTT = try optional(); minSlowRTT = try optional(); minUnansweredHeadroom = try optional()
        firstRoundNs = hourNs + (try r.i()); lastRoundNs = hourNs + (try r.i())
        tally.rounds = try r.n()
        for _ in 0..<(try r.n()) {
            let ttl = try r.n()
            tally.hops[ttl] = try r.hop(hourNs: hourNs)
        }
        tally.target = try r.hop(hourNs: hourNs)
        for _ in 0..<(try r.n()) {
            let ttl = try r.n()
            var d = PathDistanceCount(rounds: try r.n(), lastNs: hourNs + (try r.i()))
            d.target = PathProbeCounts(probed: d.rounds, answered: try r.n())
            d.forwardLost = try r.n()
            tally.distances[ttl] = d
        }
        tally.lostRounds = try r.n(); tally.lostNotSent = try r.n()
        var counts: [[Int: PathProbeCounts]] = []
        for _ in 0..<2 {
            var byTTL: [Int: PathProbeCounts] = [:]
            for _ in 0..<(try r.n()) { byTTL[try r.n()] = PathProbeCounts(probed: try r.n(), answered: try r.n(), lostFrom: try r.n()) }
            counts.append(byTTL)
        }
        tally.lost = counts[0]; tally.reached = counts[1]
        var previous = hourNs
        for _ in 0..<(try r.n()) {
            let roundNs = previous + Nanoseconds(truncatingIfNeeded: try r.u()); previous = roundNs
            let target = PathRoundProbe(ttl: try r.n(), sentNs: roundNs, verdict: .lost, notSent: try r.n() != 0)
            var hops: [PathRoundProbe] = []
            for _ in 0..<(try r.n()) {
                hops.append(PathRoundProbe(ttl: try r.n(), sentNs: roundNs, verdict: try r.n() != 0 ? .received : .lost))
            }
            lostRounds.append(PathRound(roundNs: roundNs, hops: hops, target: target))
        }
        try r.end()
    }
}

/// Varints out: what PathSummary's encoding is made of.
private struct VarintWriter {
    var bytes: [UInt8]
    init(first: UInt8) { bytes = [first] }
    mutating func u(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func u(_ value: Int) { u(UInt64(value)) }
    mutating func i(_ value: Int64) { u(BlockCodec.zigzag(value)) }

    mutating func hop(_ h: PathHopTally, hourNs: Nanoseconds) {
        u(h.sent); u(h.answered); u(h.forwardLost)
        if h.rtt.count > 0 {
            u(h.rtt.count)
            i(h.rtt.min); i(h.rtt.max - h.rtt.min); i(h.rtt.sum); u(h.rtt.m2.bitPattern)
            i(h.rtt.first); i(h.rtt.last); i(h.rtt.jitterSum)
            u(h.histogram.count)
            var previous: Int32 = 0
            for (index, bin) in h.histogram.enumerated() {
                if index == 0 { i(Int64(bin.bucket)) } else { u(Int(bin.bucket - previous)) }
                previous = bin.bucket
                u(bin.count)
            }
        } else {
            u(0)
        }
        u(h.answers.count)
        for a in h.answers {
            let utf8 = Array(a.address.utf8)
            u(utf8.count); bytes += utf8
            u(a.count); i(a.lastNs - hourNs)
        }
    }
}

/// Varints in (LEB128, from after the version byte), with the corruption
/// error of a damaged summary: HourSummary's and PathSummary's decoding.
struct VarintReader {
    let bytes: [UInt8]
    let what: String
    var at = 1
    init(_ bytes: [UInt8], what: String) { self.bytes = bytes; self.what = what }

    func corrupt() -> StoreError {
        StoreError(resultCode: .corrupt, message: "\(what) cannot be decoded", sql: nil)
    }
    mutating func u() throws -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard at < bytes.count, shift < 64 else { throw corrupt() }
            let b = bytes[at]; at += 1
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
        }
    }
    /// A count or TTL: never negative, never absurd.
    mutating func n() throws -> Int {
        let v = try u()
        guard v < UInt64(Int32.max) else { throw corrupt() }
        return Int(v)
    }
    mutating func i() throws -> Int64 { BlockCodec.unzigzag(try u()) }
    func end() throws { guard at == bytes.count else { throw corrupt() } }

    mutating func hop(hourNs: Nanoseconds) throws -> PathHopTally {
        var h = PathHopTally()
        h.exactRTTs = nil
        h.sent = try n(); h.answered = try n(); h.forwardLost = try n()
        let count = try n()
        if count > 0 {
            h.rtt.count = count
            h.rtt.min = try i(); h.rtt.max = h.rtt.min + (try i()); h.rtt.sum = try i()
            h.rtt.mean = Double(h.rtt.sum) / Double(count)
            h.rtt.m2 = Double(bitPattern: try u())
            h.rtt.first = try i(); h.rtt.last = try i(); h.rtt.jitterSum = try i()
            var bucket: Int32 = 0
            for index in 0..<(try n()) {
                if index == 0 { bucket = Int32(truncatingIfNeeded: try i()) } else { bucket += Int32(truncatingIfNeeded: try u()) }
                guard bucket >= 0, bucket < rttBucketCount else { throw corrupt() }
                h.histogram.append(HistogramBin(bucket: bucket, count: try n()))
            }
        }
        for _ in 0..<(try n()) {
            let length = try n()
            guard at + length <= bytes.count else { throw corrupt() }
            let address = String(decoding: bytes[at..<(at + length)], as: UTF8.self)
            at += length
            h.answers.append(PathAnswerCount(address: address, count: try n(), lastNs: hourNs + (try i())))
        }
        return h
    }
}
