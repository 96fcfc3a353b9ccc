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
    mutating func judgePath(_ pieces: PathPieces) {
        var one = [self]
        TargetReport.judgePaths(&one, pieces)
        self = one[0]
    }

    /// judgePath for one target's reports of one window at several epoch
    /// widths (makeReports: same summary and outages, other epochs), in one
    /// pass over the pieces: each round judged and each summary decoded
    /// once, the window's tally and judge made once. An epoch's tally lives
    /// while the pass is in it, and after only if the epoch lost probes (its
    /// `where` needs the window's judge): memory stays bounded by the
    /// epochs, whatever the window's length.
    /// `kept` (serve's live page): the target's runs of summarized hours
    /// from the report before, taken again where their rows are the same,
    /// and this report's kept for the next (PathRuns.swift).
    static func judgePaths(_ reports: inout [TargetReport], _ pieces: PathPieces,
                           kept: KeptPathRuns? = nil, target: Int64 = 0) {
        guard let first = reports.first else { return }
        var window = PathTally()
        var widths = reports.map { EpochTallies(epochs: $0.epochs) }
        var lostRounds: [PathRound] = []
        func add(at time: Nanoseconds, _ addTo: (inout PathTally) -> Void) {
            addTo(&window)
            for w in widths.indices { widths[w].add(at: time, to: &reports[w].epochs, addTo) }
        }
        let before = kept?.of(target) ?? [:]
        var runs: [Nanoseconds: PathRun] = [:]
        var reused = 0
        func sameEpochs(_ a: Nanoseconds, _ b: Nanoseconds) -> Bool {
            widths.indices.allSatisfy { widths[$0].epoch(holding: a, reports[$0].epochs) == widths[$0].epoch(holding: b, reports[$0].epochs) }
        }
        var next = 0
        for bounds in pathRunBounds(pieces.hours) {
            let rows = pieces.hours[bounds]
            let start = rows.first!.hourNs
            while next < pieces.rounds.count && pieces.rounds[next].roundNs < start {
                let round = pieces.rounds[next]
                add(at: round.roundNs) { $0.add(round) }
                next += 1
            }
            let digest = kept == nil ? 0 : pathRunDigest(rows)
            var run: PathRun
            if let old = before[start], old.digest == digest,
               old.segments.allSatisfy({ sameEpochs($0.startNs, $0.endNs - 1) }) {
                run = old
                reused += 1
            } else {
                run = makePathRun(rows, digest: digest, sameEpochs: sameEpochs)
            }
            window.append(run.tally)
            for segment in run.segments {
                for w in widths.indices {
                    widths[w].add(at: segment.startNs, to: &reports[w].epochs) { $0.append(segment.counts) }
                }
            }
            lostRounds += run.lostRounds
            if kept != nil { runs[start] = run }
        }
        for round in pieces.rounds[next...] { add(at: round.roundNs) { $0.add(round) } }
        kept?.keep(runs, of: target, reused: reused)
        let lost = pieces.rounds.filter { $0.target.map { !$0.answered } ?? false }
        let judge = PathJudge(tally: window, rounds: (lost + lostRounds).sorted { $0.roundNs < $1.roundNs })
        let path = judge.hops.map(PathHop.init)
        // The widths share the window's summary and outages (each report
        // still gets its own, should they ever differ).
        let windowWhere = judge.lossWhere(window)
        let outageWhere = first.outages.map { judge.lossWhere(from: $0.start, to: $0.end) }
        for w in reports.indices {
            widths[w].close(&reports[w].epochs)
            reports[w].path = path
            if reports[w].summary.lost > 0 { reports[w].summary.lossWhere = windowWhere }
            for i in reports[w].epochs.indices {
                if reports[w].epochs[i].summary.lost > 0 {
                    reports[w].epochs[i].summary.lossWhere = judge.lossWhere(widths[w].lossy[i] ?? PathTally(keepingAnswers: false))
                }
                if window.rounds == 0 { reports[w].epochs[i].path = [] }
            }
            let same = reports[w].outages.map { ($0.start, $0.end) }.elementsEqual(first.outages.map { ($0.start, $0.end) }, by: ==)
            for i in reports[w].outages.indices {
                let (start, end) = (reports[w].outages[i].start, reports[w].outages[i].end)
                reports[w].outages[i].lossWhere = same ? outageWhere[i] : judge.lossWhere(from: start, to: end)
            }
        }
    }
}

/// One width's epoch tallies during judgePaths' pass: the epoch the pass
/// is in, counted; when the pass leaves it, its counts go into its
/// `Epoch.path` and, if it lost probes, its tally is kept for its `where`.
private struct EpochTallies {
    let lostIn: [Bool]
    var epoch = 0
    var current = PathTally(keepingAnswers: false)
    var touched = false
    var lossy: [Int: PathTally] = [:]

    init(epochs: [Epoch]) { lostIn = epochs.map { $0.summary.lost > 0 } }

    /// Adds to the epoch holding `time` (the times come in order).
    mutating func add(at time: Nanoseconds, to epochs: inout [Epoch], _ addTo: (inout PathTally) -> Void) {
        while epoch < epochs.count && epochs[epoch].end <= time {
            close(&epochs)
            epoch += 1
        }
        if epoch < epochs.count && epochs[epoch].start <= time {
            addTo(&current)
            touched = true
        }
    }

    /// The index of the epoch holding `time`, nil outside every epoch.
    func epoch(holding time: Nanoseconds, _ epochs: [Epoch]) -> Int? {
        var low = 0, high = epochs.count
        while low < high {
            let mid = (low + high) / 2
            if epochs[mid].end <= time { low = mid + 1 } else { high = mid }
        }
        return low < epochs.count && epochs[low].start <= time ? low : nil
    }

    /// Leaves the current epoch.
    mutating func close(_ epochs: inout [Epoch]) {
        guard touched else { return }
        epochs[epoch].path = current.counts()
        if lostIn[epoch] { lossy[epoch] = current }
        current = PathTally(keepingAnswers: false)
        touched = false
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
