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
    /// The window's rounds, in round order.
    public let rounds: [PathRound]
    /// The window's hop figures, the target last (empty without rounds).
    public let hops: [PathHopFigures]
    /// Per TTL, the share of the window's rounds that reached the target in
    /// which that hop answered (hops probed in no such round are absent).
    let baseline: [Int: Double]

    /// `rounds` in any order.
    public init(rounds: [PathRound]) {
        let sorted = rounds.sorted { $0.roundNs < $1.roundNs }
        self.rounds = sorted
        hops = pathHopFigures(sorted)
        var probed: [Int: (answered: Int, rounds: Int)] = [:]
        for round in sorted where round.target?.answered == true {
            for hop in round.hops {
                let seen = probed[hop.ttl] ?? (0, 0)
                probed[hop.ttl] = (seen.answered + (hop.answered ? 1 : 0), seen.rounds + 1)
            }
        }
        baseline = probed.mapValues { Double($0.answered) / Double($0.rounds) }
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
        let lost = rounds(from: start, to: end).filter { $0.target.map { !$0.answered } ?? false }
        if lost.isEmpty { return .unknown }
        let notSent = lost.filter { $0.target!.notSent }.count
        if 2 * notSent > lost.count { return PathWhere(segment: .local) }
        let sent = lost.filter { !$0.target!.notSent }
        let ttls = Set(sent.flatMap { $0.hops.map(\.ttl) }).sorted()
        for ttl in ttls where beginsAt(ttl, sent) {
            let address = hops.first { !$0.isTarget && $0.ttl == ttl }?.address
            return PathWhere(segment: ttl == 1 ? .gateway : .path, ttl: ttl, address: address)
        }
        let target = hops.last { $0.isTarget }
        return PathWhere(segment: .target, ttl: target?.ttl, address: target?.address)
    }

    /// Rules (a) and (b) for the hop at `ttl` over the sent rounds that lost the target.
    private func beginsAt(_ ttl: Int, _ lost: [PathRound]) -> Bool {
        let lostFrom = lost.filter { $0.lostFrom(ttl) }.count
        guard 2 * lostFrom > lost.count else { return false }
        guard let usual = baseline[ttl] else { return true }
        let probed = lost.compactMap { $0.hop(ttl) }
        let answered = Double(probed.filter(\.answered).count) / Double(probed.count)
        return usual > 0 && 2 * answered <= usual
    }
}
