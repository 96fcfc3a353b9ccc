// A target's path rounds, judged probe by probe, and each hop's figures over
// any set of rounds. The rules (docs/REPORTS.md, "Paths and where"):
//   * a path probe is judged by the one verdict (ProbeAnswers.verdict) at the
//     report's timeout: a hop's probe is answered by whatever ICMP answer came
//     from that hop (time exceeded, or an echo reply or an unreachable when
//     the path was shorter than the round thought); the round's probe to the
//     target only by the target's echo reply (an error is a lost probe with a
//     failure, as for the target's regular probes);
//   * a round holding a probe whose verdict is unknown (its recorder stopped
//     before the timeout ran out) is left out whole: the recorder was not
//     there to see its answers, which is never loss;
//   * a hop's unanswered probe is forward loss only if every later probe of
//     its round (later hops and the target) went unanswered too (trippy's
//     rule); a hop that does not answer while later hops do is a router that
//     does not reply to probes, never loss.

/// One probe of a round, judged.
public struct PathRoundProbe: Sendable, Hashable {
    public var ttl: Int
    public var sentNs: Nanoseconds
    /// received (answered within the timeout), late or lost; never unknown
    /// (such rounds are left out).
    public var verdict: Verdict
    /// The send failed: the probe never left.
    public var notSent: Bool
    /// The answer's rtt and address, when answered.
    public var rttNs: Nanoseconds?
    public var from: String?

    public init(ttl: Int, sentNs: Nanoseconds, verdict: Verdict, notSent: Bool = false,
                rttNs: Nanoseconds? = nil, from: String? = nil) {
        self.ttl = ttl; self.sentNs = sentNs; self.verdict = verdict; self.notSent = notSent
        self.rttNs = rttNs; self.from = from
    }

    @inlinable public var answered: Bool { verdict == .received }
}

/// One round: a probe per hop and one to the target, sent together.
public struct PathRound: Sendable, Hashable {
    public var roundNs: Nanoseconds
    /// The hops' probes, by TTL.
    public var hops: [PathRoundProbe]
    /// The probe to the target (nil only in incomplete data: such a round
    /// gives hop figures but no evidence for `where`).
    public var target: PathRoundProbe?

    public init(roundNs: Nanoseconds, hops: [PathRoundProbe], target: PathRoundProbe?) {
        self.roundNs = roundNs; self.hops = hops; self.target = target
    }

    /// Hops then the target: the order "every later probe" walks.
    var probes: [PathRoundProbe] { target.map { hops + [$0] } ?? hops }

    /// The hop probe at `ttl`, if the round had one.
    func hop(_ ttl: Int) -> PathRoundProbe? {
        let index = ttl - 1
        if index >= 0 && index < hops.count && hops[index].ttl == ttl { return hops[index] }
        return hops.first { $0.ttl == ttl }
    }

    /// Whether the hop at `ttl` and every later probe of the round (later
    /// hops and the target) went unanswered; false without a probe at `ttl`.
    func lostFrom(_ ttl: Int) -> Bool {
        guard hop(ttl) != nil else { return false }
        return !probes.contains { $0.ttl >= ttl && $0.answered }
    }
}

/// The rounds of one target's path probes (any order), in round order, each
/// probe judged at `timeoutNs` against `sessions` (the target's sessions
/// sorted by start: sessionsJudging). Rounds with an unknown probe are left out.
public func pathRounds(_ probes: some RandomAccessCollection<PathProbeRecord>, sessions: [SessionRecord],
                       timeoutNs: Nanoseconds) -> [PathRound] {
    // The store gives (round, ttl) order, which is this one: a round's
    // hops have smaller TTLs than its probe to the target. Sorting is only
    // a guard for hand-built input.
    func order(_ p: PathProbeRecord) -> (Int64, Int, Int) { (p.roundNs, p.toTarget ? 1 : 0, p.ttl) }
    guard !zip(probes, probes.dropFirst()).contains(where: { order($0) > order($1) }) else {
        return pathRounds(probes.sorted { order($0) < order($1) }, sessions: sessions, timeoutNs: timeoutNs)
    }
    var cursor = SessionCursor(sessions)
    var rounds: [PathRound] = []
    var index = probes.startIndex
    while index < probes.endIndex {
        let roundNs = probes[index].roundNs
        var round = PathRound(roundNs: roundNs, hops: [], target: nil)
        var unknown = false
        while index < probes.endIndex && probes[index].roundNs == roundNs {
            let record = probes[index]
            probes.formIndex(after: &index)
            let session = cursor.session(at: record.sentNs)
            let judged = judge(record, sessionEndNs: cursor.endNs(session), timeoutNs: timeoutNs)
            if judged.verdict == .unknown { unknown = true }
            if record.toTarget { round.target = judged } else { round.hops.append(judged) }
        }
        if !unknown { rounds.append(round) }
    }
    return rounds
}

/// One path probe through the one verdict: a hop's answer of any kind is its
/// reply; the target's only by its echo reply, any other answer an ICMP error.
private func judge(_ record: PathProbeRecord, sessionEndNs: @autoclosure () -> Nanoseconds?,
                   timeoutNs: Nanoseconds) -> PathRoundProbe {
    let replied = record.answer == .echoReply || (!record.toTarget && record.answer != nil)
    let rtt = record.rttNs
    let failure: FailureKind? = if let errno = record.sendError {
        .send(errno)
    } else if !replied && rtt != nil {
        .icmp(family: 0, type: UInt8(clamping: record.icmpType ?? 0), code: UInt8(clamping: record.icmpCode ?? 0))
    } else {
        nil
    }
    let answers = ProbeAnswers(firstReplyNs: replied ? rtt : nil, replies: replied && rtt != nil ? 1 : 0, failure: failure)
    let verdict = answers.verdict(sentNs: record.sentNs, sessionEndNs: sessionEndNs(), timeoutNs: timeoutNs)
    let answered = verdict == .received
    return PathRoundProbe(ttl: record.ttl, sentNs: record.sentNs, verdict: verdict, notSent: record.sendError != nil,
                          rttNs: answered ? rtt : nil, from: answered ? record.from : nil)
}

// MARK: - Hop figures

/// One hop's figures over a set of rounds (the last entry of a path is the
/// target itself).
public struct PathHopFigures: Sendable, Equatable {
    public var ttl: Int
    public var isTarget: Bool
    public var sent = 0
    public var answered = 0
    /// Unanswered probes whose every later probe of the round went unanswered too.
    public var forwardLost = 0
    /// The answers' RTT figures (nil without answers), from the one RTT code.
    public var rtt: RTTFigures?
    /// Its most frequent answering address (on a tie the latest to answer);
    /// nil for a hop that never answered (`* * *`).
    public var address: String?
    /// Every address that answered, in the order each first answered: a
    /// route change shows as a second address.
    public var addresses: [String] = []

    public init(ttl: Int, isTarget: Bool) { self.ttl = ttl; self.isTarget = isTarget }

    /// Unanswered / sent * 100 (nil without probes).
    public var lossPct: Double? { lossPercent(lost: sent - answered, sent: sent, unknown: 0) }
    /// Forward-lost / sent * 100 (nil without probes).
    public var forwardLossPct: Double? { lossPercent(lost: forwardLost, sent: sent, unknown: 0) }
}

/// One hop's counts over a period: what a view colours per epoch (its
/// figures without the RTTs and addresses, which an epoch strip does not
/// draw and would cost a sort and a dictionary per epoch and hop).
public struct PathHopCounts: Sendable, Equatable {
    public var ttl: Int
    public var isTarget: Bool
    public var sent: Int
    public var answered: Int
    /// Unanswered probes whose every later probe of the round went unanswered too.
    public var forwardLost: Int

    public init(ttl: Int, isTarget: Bool, sent: Int, answered: Int, forwardLost: Int) {
        self.ttl = ttl; self.isTarget = isTarget; self.sent = sent; self.answered = answered
        self.forwardLost = forwardLost
    }
}

/// Each hop's counts over `rounds` (in round order), as pathHopFigures
/// gives them.
public func pathHopCounts(_ rounds: some Collection<PathRound>) -> [PathHopCounts] {
    PathTally(rounds, keepingAnswers: false).counts()
}

/// Each hop's figures over `rounds` (in round order), by TTL, then the
/// target's, whose TTL is the distance most rounds had (on a tie the latest).
public func pathHopFigures(_ rounds: some Collection<PathRound>) -> [PathHopFigures] {
    PathTally(rounds).figures()
}
