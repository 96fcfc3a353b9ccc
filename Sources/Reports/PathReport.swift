// A target's path in its report: the window's hop figures and the `where` of
// the window, of each epoch and of each outage, all from Store's path judge
// (PathJudge, PathTally) over the window's rounds: raw rounds, and the path
// summaries of whole hours that judge exactly as their raw rounds would
// (exactPathSummaries). Tallies are exact sums over rounds, so:
//   * every count, address, `Epoch.path` and `where` is what the raw rounds
//     give; a window's and an epoch's `where` from its merged tally, an
//     outage's from the rounds of its own minutes (raw rounds, and the
//     rounds that lost the target that each summary keeps);
//   * a hop's RTT min, max, avg, stddev and jitter are exact, its
//     percentiles from merged 1.5 % histograms once a summary joined.
// The raw path and the summary path call the same functions with the same
// input, so they give the same path and the same `where`.
import Store

/// The pieces of one target's path over the window: its raw rounds and the
/// summarized hours taken as they are, each in time order.
struct PathPieces {
    /// Raw rounds outside the summarized hours, in round order.
    var rounds: [PathRound]
    /// Summaries of whole hours, by hour (decoded while they are added up).
    var hours: [PathSummaryRow]
}

/// `target`'s path pieces of the window, raw rounds judged at the report's
/// timeout. With several widths (makeReports), an hour is taken from its
/// summary only where it lies whole in an epoch of every width: each
/// width's epochs get the same pieces.
func pathJudge(_ target: TargetRecord, input: ReportInput, options: ReportOptions,
               sessions: [SessionRecord], widths: [ReportOptions]? = nil) -> PathPieces {
    var hours = exactPathSummaries(input.pathSummaries.filter { $0.targetID == target.id }, options)
    for other in widths ?? [] {
        let usable = Set(exactPathSummaries(hours, other).map(\.hourNs))
        hours = hours.filter { usable.contains($0.hourNs) }
    }
    hours.sort { $0.hourNs < $1.hourNs }
    let summarized = Set(hours.map(\.hourNs))
    let mine = input.pathProbes(of: target.id)
    let wanted = { (probe: PathProbeRecord) in
        probe.roundNs >= options.since && probe.roundNs < options.until
            && (summarized.isEmpty || !summarized.contains(floorDivide(probe.roundNs, summaryHourNs) * summaryHourNs))
    }
    // The loader gives only what is wanted: a copy only for other input.
    let rounds = mine.allSatisfy(wanted)
        ? pathRounds(mine, sessions: sessions, timeoutNs: options.timeoutNs)
        : pathRounds(mine.filter(wanted), sessions: sessions, timeoutNs: options.timeoutNs)
    return PathPieces(rounds: rounds, hours: hours)
}

extension TargetReport {
    /// Fills `path`, each epoch's hop counts and every `where`: the window's
    /// and each epoch's when they lost probes (else nil), each outage's.
    /// Summarized hours lie inside one epoch (exactPathSummaries).
    mutating func judgePath(_ pieces: PathPieces, since: Nanoseconds, until: Nanoseconds) {
        var window = PathTally()
        var perEpoch = epochs.map { _ in PathTally(keepingAnswers: false) }
        var lostRounds: [PathRound] = []
        var epoch = 0
        func add(at time: Nanoseconds, _ addTo: (inout PathTally) -> Void) {
            addTo(&window)
            while epoch < epochs.count && epochs[epoch].end <= time { epoch += 1 }
            if epoch < epochs.count && epochs[epoch].start <= time { addTo(&perEpoch[epoch]) }
        }
        var next = 0
        for row in pieces.hours {
            while next < pieces.rounds.count && pieces.rounds[next].roundNs < row.hourNs {
                let round = pieces.rounds[next]
                add(at: round.roundNs) { $0.add(round) }
                next += 1
            }
            // Checked by exactPathSummaries, which read raw rounds instead.
            guard let hour = try? row.decoded() else { continue }
            add(at: row.hourNs) { $0.append(hour.tally) }
            lostRounds += hour.lostRounds
        }
        for round in pieces.rounds[next...] { add(at: round.roundNs) { $0.add(round) } }
        let lost = pieces.rounds.filter { $0.target.map { !$0.answered } ?? false }
        let judge = PathJudge(tally: window, rounds: (lost + lostRounds).sorted { $0.roundNs < $1.roundNs })
        path = judge.hops.map(PathHop.init)
        if summary.lost > 0 { summary.lossWhere = judge.lossWhere(window) }
        for i in epochs.indices {
            if epochs[i].summary.lost > 0 { epochs[i].summary.lossWhere = judge.lossWhere(perEpoch[i]) }
            if window.rounds > 0 { epochs[i].path = perEpoch[i].counts() }
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
