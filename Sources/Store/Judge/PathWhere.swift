// Where a period's loss begins, judged round by round over the path rounds
// of that period (a round belongs to it by its round time). The caller asks
// only for periods with lost target probes (the target's verdicts); the
// rules, in order (docs/REPORTS.md, "Paths and where"):
//   * unknown: no round of the period lost its probe to the target (no
//     rounds at all: paths off, not yet discovered; or rounds that all got
//     through, so none saw the loss);
//   * local: in most rounds that lost the target (more than half) its probe
//     was never sent (a send error: no route, link down);
//   * otherwise, among the rounds that lost the target and were sent (L), the
//     smallest TTL h such that
//       (a) in more than half of L, h and every later hop and the target went
//           unanswered, and
//       (b) h answered in L at most half as often as in the rounds of the
//           whole window that reached the target (its baseline), and it did
//           answer in some of them; without any such round (the window is
//           one outage) there is no baseline and (a) alone decides.
//     (b) is what keeps a router that rate-limits its answers (in every
//     round, lost or not) from being blamed, even right in front of the hop
//     where the loss really begins, and a router that never answers from
//     being blamed for the loss behind it. h = 1 is `gateway`, h >= 2 `path`,
//     each with the hop's most frequent address over the window;
//   * no such h: `target`, the far end itself (every hop that answers at all
//     answered, the target did not).

/// The segment a period's loss is blamed on.
public enum PathSegment: String, Sendable, Hashable, CaseIterable {
    case local, gateway, path, target, unknown
}

/// Where a period's loss begins: the segment, and for gateway and path the
/// hop's TTL and address (for target the target's distance and address).
public struct PathWhere: Sendable, Hashable {
    public var segment: PathSegment
    public var ttl: Int?
    public var address: String?
    public init(segment: PathSegment, ttl: Int? = nil, address: String? = nil) {
        self.segment = segment; self.ttl = ttl; self.address = address
    }
    public static let unknown = PathWhere(segment: .unknown)
}

/// One target's path over a window: its hop figures, and `where` for any
/// period inside the window.
public struct PathJudge: Sendable {
    /// The rounds `lossWhere(from:to:)` looks at, in round order: all the
    /// window's, or (from summarized hours) only the rounds that lost the
    /// target, which are all a period's `where` reads.
    public let rounds: [PathRound]
    /// The window's rounds, tallied: the baseline of every period.
    public let tally: PathTally
    /// The window's hop figures, the target last (empty without rounds).
    public let hops: [PathHopFigures]

    /// `rounds` in any order: the window's rounds, all raw.
    public init(rounds: [PathRound]) {
        let sorted = rounds.sorted { $0.roundNs < $1.roundNs }
        self.init(tally: PathTally(sorted), rounds: sorted)
    }

    /// The window's tally and, in round order, every round of the window
    /// that lost the target (any others too).
    public init(tally: PathTally, rounds: [PathRound]) {
        self.rounds = rounds
        self.tally = tally
        hops = tally.figures()
    }

    /// The rounds whose round time lies in [start, end).
    public func rounds(from start: Nanoseconds, to end: Nanoseconds) -> ArraySlice<PathRound> {
        rounds[lowerBound(start)..<lowerBound(end)]
    }

    private func lowerBound(_ time: Nanoseconds) -> Int {
        var low = 0, high = rounds.count
        while low < high {
            let mid = (low + high) / 2
            if rounds[mid].roundNs < time { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Where the loss of the period [start, end) begins (the rules above).
    public func lossWhere(from start: Nanoseconds, to end: Nanoseconds) -> PathWhere {
        lossWhere(PathTally(rounds(from: start, to: end).lazy.filter { $0.target.map { !$0.answered } ?? false },
                            keepingAnswers: false))
    }

    /// Where the loss of a period inside the window begins, from its tally.
    public func lossWhere(_ period: PathTally) -> PathWhere {
        if period.lostRounds == 0 { return .unknown }
        if 2 * period.lostNotSent > period.lostRounds { return PathWhere(segment: .local) }
        let sent = period.lostRounds - period.lostNotSent
        for ttl in period.lost.filter({ $0.value.probed > 0 }).keys.sorted()
        where beginsAt(ttl, period.lost[ttl]!, sent: sent) {
            let address = hops.first { !$0.isTarget && $0.ttl == ttl }?.address
            return PathWhere(segment: ttl == 1 ? .gateway : .path, ttl: ttl, address: address)
        }
        let target = hops.last { $0.isTarget }
        return PathWhere(segment: .target, ttl: target?.ttl, address: target?.address)
    }

    /// Rules (a) and (b) for the hop at `ttl`, given its counts over the
    /// `sent` rounds that lost the target.
    private func beginsAt(_ ttl: Int, _ lost: PathProbeCounts, sent: Int) -> Bool {
        guard 2 * lost.lostFrom > sent else { return false }
        // The share of the window's rounds that reached the target in which
        // the hop answered (absent: probed in no such round).
        guard let reached = tally.reached[ttl], reached.probed > 0 else { return true }
        let usual = Double(reached.answered) / Double(reached.probed)
        let answered = Double(lost.answered) / Double(lost.probed)
        return usual > 0 && 2 * answered <= usual
    }
}
