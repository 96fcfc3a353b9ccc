// A target's path rounds over a period, tallied: every rule of the path
// judge (PathRounds.swift, PathWhere.swift) is a sum over rounds, so a
// period's tally is the tallies of its parts added in time order, and an
// hour's tally (PathSummary) stands for its rounds in any longer window.
//
// Invariants:
//   * Tallies are appended in time order (the rounds of `later` all come
//     after those already added): jitter joins each part to the previous one
//     and a hop's addresses keep the order in which each first answered.
//   * Every count is exact. A hop's RTTs are kept one by one while every
//     part is raw rounds (the raw report's exact figures); once an hour's
//     summary is appended they become an RTTAccumulator and a log histogram
//     (RTTAccumulator.swift), exact but for the percentiles (within 0.75 %).
//   * The counts `where` needs (PathWhere.swift) are over the rounds that
//     lost the target (their probe to the target unanswered) and over the
//     rounds that reached it (the baseline); a round without a probe to the
//     target counts in neither, as in the rules.

/// A hop's (or the target's) answers over a period: one address's share.
public struct PathAnswerCount: Sendable, Hashable {
    public var address: String
    public var count: Int
    /// The round time of its latest answer (ties of `count` go to the latest).
    public var lastNs: Nanoseconds
    public init(address: String, count: Int, lastNs: Nanoseconds) {
        self.address = address; self.count = count; self.lastNs = lastNs
    }
}

/// One hop's probes over a period (or the target's, over every distance).
public struct PathHopTally: Sendable, Hashable {
    public var sent = 0
    public var answered = 0
    /// Unanswered probes whose every later probe of the round went unanswered too.
    public var forwardLost = 0
    /// The answers' RTTs in round order, while every part is raw rounds; nil
    /// once a summarized part joined (then `rtt` and `histogram` hold them).
    public var exactRTTs: [Nanoseconds]? = []
    public var rtt = RTTAccumulator()
    /// By bucket (Store's rttBucket), counts > 0; only without exactRTTs.
    public var histogram: [HistogramBin] = []
    /// Every answering address, in the order each first answered.
    public var answers: [PathAnswerCount] = []

    public init() {}

    mutating func add(_ probe: PathRoundProbe, forwardLost lost: Bool, roundNs: Nanoseconds, keepingAnswers: Bool) {
        sent += 1
        if lost { forwardLost += 1 }
        guard probe.answered else { return }
        answered += 1
        guard keepingAnswers else { return }
        if let rttNs = probe.rttNs {
            if exactRTTs != nil { exactRTTs!.append(rttNs) } else { addMergeable(rttNs) }
        }
        if let from = probe.from { count(PathAnswerCount(address: from, count: 1, lastNs: roundNs)) }
    }

    /// A raw RTT after a summarized part joined.
    private mutating func addMergeable(_ rttNs: Nanoseconds) {
        rtt.add(rttNs)
        let bucket = rttBucket(rttNs)
        var low = 0, high = histogram.count
        while low < high {
            let mid = (low + high) / 2
            if histogram[mid].bucket < bucket { low = mid + 1 } else { high = mid }
        }
        if low < histogram.count && histogram[low].bucket == bucket { histogram[low].count += 1 } else {
            histogram.insert(HistogramBin(bucket: bucket, count: 1), at: low)
        }
    }

    private mutating func count(_ answer: PathAnswerCount) {
        if let i = answers.firstIndex(where: { $0.address == answer.address }) {
            answers[i].count += answer.count
            answers[i].lastNs = max(answers[i].lastNs, answer.lastNs)
        } else {
            answers.append(answer)
        }
    }

    /// The RTTs as an accumulator and histogram (what a summary stores).
    public mutating func mergeable() {
        guard let values = exactRTTs else { return }
        var bins: [Int32: Int] = [:]
        for v in values { rtt.add(v); bins[rttBucket(v), default: 0] += 1 }
        // As a decoded summary has it (HourSummary keeps the sum, not the mean).
        if rtt.count > 0 { rtt.mean = Double(rtt.sum) / Double(rtt.count) }
        histogram = bins.sorted { $0.key < $1.key }.map { HistogramBin(bucket: $0.key, count: $0.value) }
        exactRTTs = nil
    }

    /// The probes of a later period; without `keepingAnswers` only its counts.
    public mutating func append(_ later: PathHopTally, keepingAnswers: Bool = true) {
        sent += later.sent; answered += later.answered; forwardLost += later.forwardLost
        guard keepingAnswers else { return }
        if let mine = exactRTTs, let theirs = later.exactRTTs {
            exactRTTs = mine + theirs
        } else {
            var later = later
            later.mergeable()
            mergeable()
            rtt.append(later.rtt)
            histogram = merged(histogram, later.histogram)
        }
        for answer in later.answers { count(answer) }
    }

    func figures(ttl: Int, isTarget: Bool) -> PathHopFigures {
        var f = PathHopFigures(ttl: ttl, isTarget: isTarget)
        f.sent = sent; f.answered = answered; f.forwardLost = forwardLost
        if var values = exactRTTs {
            f.rtt = exactRTTFigures(&values)
        } else {
            var h = RTTHistogram()
            h.add(histogram)
            f.rtt = rtt.figures(h)
        }
        f.addresses = answers.map(\.address)
        f.address = answers.max { ($0.count, $0.lastNs) < ($1.count, $1.lastNs) }?.address
        return f
    }
}

/// Two histograms' bins (each by bucket) as one, by bucket: a window of a
/// year appends 8,760 hours to each hop's, so no hashing and no sort.
private func merged(_ a: [HistogramBin], _ b: [HistogramBin]) -> [HistogramBin] {
    if a.isEmpty { return b }
    if b.isEmpty { return a }
    var out: [HistogramBin] = []
    out.reserveCapacity(a.count + b.count)
    var i = 0, j = 0
    while i < a.count || j < b.count {
        if j == b.count || (i < a.count && a[i].bucket < b[j].bucket) {
            out.append(a[i]); i += 1
        } else if i == a.count || b[j].bucket < a[i].bucket {
            out.append(b[j]); j += 1
        } else {
            out.append(HistogramBin(bucket: a[i].bucket, count: a[i].count + b[j].count)); i += 1; j += 1
        }
    }
    return out
}

/// Counts of a hop's probes in a set of rounds.
public struct PathProbeCounts: Sendable, Hashable {
    public var probed = 0
    public var answered = 0
    /// Rounds in which this hop and every later probe went unanswered.
    public var lostFrom = 0
    public init(probed: Int = 0, answered: Int = 0, lostFrom: Int = 0) {
        self.probed = probed; self.answered = answered; self.lostFrom = lostFrom
    }
    mutating func add(_ other: PathProbeCounts) {
        probed += other.probed; answered += other.answered; lostFrom += other.lostFrom
    }
}

/// How many rounds had the target at one distance, and the latest of them.
public struct PathDistanceCount: Sendable, Hashable {
    public var rounds: Int
    public var lastNs: Nanoseconds
    /// The target's probes at this distance (for /metrics' hop label).
    public var target = PathProbeCounts()
    public var forwardLost = 0
    public init(rounds: Int, lastNs: Nanoseconds) { self.rounds = rounds; self.lastNs = lastNs }
}

/// A target's rounds over a period, tallied (see the file header).
public struct PathTally: Sendable, Hashable {
    /// The hops' probes, by TTL.
    public var hops: [Int: PathHopTally] = [:]
    /// The probes to the target itself, whatever their distance.
    public var target = PathHopTally()
    /// Rounds with a probe to the target, by its distance.
    public var distances: [Int: PathDistanceCount] = [:]
    /// Rounds whose probe to the target went unanswered, and of those the
    /// ones whose probe to the target was never sent.
    public var lostRounds = 0
    public var lostNotSent = 0
    /// Per TTL, over the rounds that lost the target and were sent.
    public var lost: [Int: PathProbeCounts] = [:]
    /// Per TTL, over the rounds that reached the target (lostFrom unused).
    public var reached: [Int: PathProbeCounts] = [:]
    /// Rounds tallied.
    public var rounds = 0
    /// Without it only counts are kept (no RTTs, no addresses).
    public var keepingAnswers = true

    public init(keepingAnswers: Bool = true) { self.keepingAnswers = keepingAnswers }

    /// `rounds` in round order.
    public init(_ rounds: some Sequence<PathRound>, keepingAnswers: Bool = true) {
        self.init(keepingAnswers: keepingAnswers)
        for round in rounds { add(round) }
    }

    /// The next round, in round order.
    public mutating func add(_ round: PathRound) {
        rounds += 1
        // Walking back from the target, "every later probe unanswered" is
        // one running flag; a hop's forward loss is its round.lostFrom (its
        // TTL is below every later hop's and the target's). No array of
        // the round's probes: a week is 230,000 rounds per target.
        var laterAnswered = false
        if let t = round.target {
            target.add(t, forwardLost: !t.answered, roundNs: round.roundNs, keepingAnswers: keepingAnswers)
            var d = distances[t.ttl] ?? PathDistanceCount(rounds: 0, lastNs: round.roundNs)
            d.rounds += 1
            d.lastNs = round.roundNs
            d.target.probed += 1
            if t.answered { d.target.answered += 1 } else { d.forwardLost += 1 }
            distances[t.ttl] = d
            laterAnswered = t.answered
            if !t.answered {
                lostRounds += 1
                if t.notSent { lostNotSent += 1 }
            }
        }
        // The rounds that count for `where`: those that reached the target,
        // and those that lost it and were sent.
        let reachedTarget = round.target?.answered ?? false
        let lostSent = round.target.map { !$0.answered && !$0.notSent } ?? false
        for probe in round.hops.reversed() {
            let forwardLost = !probe.answered && !laterAnswered
            laterAnswered = laterAnswered || probe.answered
            hops[probe.ttl, default: PathHopTally()].add(probe, forwardLost: forwardLost, roundNs: round.roundNs,
                                                           keepingAnswers: keepingAnswers)
            if reachedTarget {
                reached[probe.ttl, default: PathProbeCounts()].add(PathProbeCounts(probed: 1, answered: probe.answered ? 1 : 0))
            } else if lostSent {
                lost[probe.ttl, default: PathProbeCounts()].add(
                    PathProbeCounts(probed: 1, answered: probe.answered ? 1 : 0, lostFrom: forwardLost ? 1 : 0))
            }
        }
    }

    /// The rounds of a later period.
    public mutating func append(_ later: PathTally) {
        for (ttl, hop) in later.hops { hops[ttl, default: PathHopTally()].append(hop, keepingAnswers: keepingAnswers) }
        target.append(later.target, keepingAnswers: keepingAnswers)
        for (ttl, d) in later.distances {
            guard var mine = distances[ttl] else { distances[ttl] = d; continue }
            mine.rounds += d.rounds
            mine.lastNs = max(mine.lastNs, d.lastNs)
            mine.target.add(d.target)
            mine.forwardLost += d.forwardLost
            distances[ttl] = mine
        }
        lostRounds += later.lostRounds
        lostNotSent += later.lostNotSent
        for (ttl, c) in later.lost { lost[ttl, default: PathProbeCounts()].add(c) }
        for (ttl, c) in later.reached { reached[ttl, default: PathProbeCounts()].add(c) }
        rounds += later.rounds
    }

    /// The distance most rounds had (on a tie the latest), nil without a
    /// probe to the target.
    public var distance: Int? {
        distances.max { ($0.value.rounds, $0.value.lastNs) < ($1.value.rounds, $1.value.lastNs) }?.key
    }

    /// Each hop's figures by TTL, then the target's at its distance.
    public func figures() -> [PathHopFigures] {
        var result = hops.keys.sorted().map { hops[$0]!.figures(ttl: $0, isTarget: false) }
        if let distance { result.append(target.figures(ttl: distance, isTarget: true)) }
        return result
    }

    /// Each hop's counts, as figures() orders them.
    public func counts() -> [PathHopCounts] {
        var result = hops.keys.sorted().map {
            PathHopCounts(ttl: $0, isTarget: false, sent: hops[$0]!.sent, answered: hops[$0]!.answered,
                          forwardLost: hops[$0]!.forwardLost)
        }
        if let distance {
            result.append(PathHopCounts(ttl: distance, isTarget: true, sent: target.sent, answered: target.answered,
                                        forwardLost: target.forwardLost))
        }
        return result
    }
}
