// A target's path in its report: the window's hop figures and the `where` of
// the window, of each epoch and of each outage, all from Store's PathJudge
// over the window's raw path probes. The raw path and the summary path call
// the same two functions with the same probes, outages and lost counts, so
// they give the same path and the same `where`.
import Store

/// The judge of `target`'s path rounds of the window, at the report's timeout.
func pathJudge(_ target: TargetRecord, input: ReportInput, options: ReportOptions,
               sessions: [SessionRecord]) -> PathJudge {
    let probes = input.pathProbes.filter {
        $0.targetID == target.id && $0.roundNs >= options.since && $0.roundNs < options.until
    }
    return PathJudge(rounds: pathRounds(probes, sessions: sessions, timeoutNs: options.timeoutNs))
}

extension TargetReport {
    /// Fills `path`, each epoch's hop counts and every `where`: the window's
    /// and each epoch's when they lost probes (else nil), each outage's.
    mutating func judgePath(_ judge: PathJudge, since: Nanoseconds, until: Nanoseconds) {
        path = judge.hops.map(PathHop.init)
        if summary.lost > 0 { summary.lossWhere = judge.lossWhere(from: since, to: until) }
        for i in epochs.indices {
            if epochs[i].summary.lost > 0 {
                epochs[i].summary.lossWhere = judge.lossWhere(from: epochs[i].start, to: epochs[i].end)
            }
            if !judge.rounds.isEmpty {
                epochs[i].path = pathHopCounts(judge.rounds(from: epochs[i].start, to: epochs[i].end))
            }
        }
        for i in outages.indices {
            outages[i].lossWhere = judge.lossWhere(from: outages[i].start, to: outages[i].end)
        }
    }
}

extension PathHop {
    init(_ f: PathHopFigures) {
        self.init(ttl: f.ttl, isTarget: f.isTarget, address: f.address, addresses: f.addresses, sent: f.sent,
                  answered: f.answered, lossPct: f.lossPct, forwardLossPct: f.forwardLossPct, rtt: RTTStats(f.rtt))
    }
}

// MARK: - In words

/// The verdict of a period in a sentence, after the path table.
func whereSentence(_ lossWhere: PathWhere?) -> String {
    guard let w = lossWhere else { return "nothing was lost in this window" }
    switch w.segment {
    case .local:
        return "the lost probes were never sent (send errors): your own machine or link"
    case .gateway:
        return "loss begins at hop 1, \(w.address ?? "which never answered"): your gateway"
    case .path:
        return "loss begins at hop \(w.ttl ?? 0), \(w.address ?? "which never answered"), and continues to the target: beyond your gateway"
    case .target:
        return "every hop answered but the target did not: the far end itself"
    case .unknown:
        return "no path round saw the loss (paths off or not yet discovered): where it begins is unknown"
    }
}

/// The short form an outage line ends with: "where: hop 3, 203.0.113.9".
func whereLabel(_ w: PathWhere) -> String {
    switch w.segment {
    case .gateway: return "where: gateway" + (w.address.map { ", \($0)" } ?? "")
    case .path: return "where: hop \(w.ttl ?? 0)" + (w.address.map { ", \($0)" } ?? "")
    case .local, .target, .unknown: return "where: \(w.segment.rawValue)"
    }
}
