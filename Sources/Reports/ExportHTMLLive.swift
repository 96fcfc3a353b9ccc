// The live page's epochs, kept between the ticks of `pingem serve`'s event
// stream, so a tick costs what is new rather than the whole window.
//
// Invariant: an epoch is kept only when nothing the recorder can still write
// changes it: it ends at least `stableMarginNs` before the window's end (the
// recorder matches a reply up to 10 minutes after its probe, and commits it
// later still), and, where the page reads hourly summaries, before the end of
// the last summarized hour (once the upkeep summarizes an hour, its
// percentiles come from the summary's histogram, so an epoch made earlier
// from raw probes would differ). The window's first epoch is never kept: its
// start moves with a `--last` window.
//
// Every epoch, kept or not, is made by the export's own code (exportFigures)
// over a window cut at epoch bounds. That gives each epoch exactly as the
// whole window's report does, because an epoch's figures depend only on its
// own probes, hours and sessions. The page's whole-window figures (summary,
// outages, histogram) and its coarsest level are made afresh each tick over
// the whole window: nearest-rank percentiles and the jitter and Welford sums
// of a window cannot be merged from epochs' figures bit for bit, and that
// level has at most a few hundred epochs. So the data equals exportData's,
// byte for byte.
import Store

public struct LivePageCache: Sendable {
    /// Kept epochs (one per target and epoch width) beyond which no more are
    /// kept: 120,000 of about 250 bytes, some 30 MB.
    public var maximumKept: Int
    /// Epochs kept now, counted as maximumKept counts them.
    public private(set) var kept = 0
    /// Epochs made afresh (not taken from the kept ones) by the last call,
    /// the coarsest level's included.
    public private(set) var madeEpochs = 0
    /// The page's targets when the epochs were kept: a new target clears them.
    private var targets: [String] = []
    /// By epoch width, by epoch start: each kept epoch, one per target.
    private var levels: [Nanoseconds: [Nanoseconds: KeptEpoch]] = [:]
    /// The coarsest level's runs of summarized path hours.
    private let pathRuns = KeptPathRuns()
    /// Runs of summarized path hours taken from earlier calls, over all calls.
    public var reusedPathRuns: Int { pathRuns.reused }

    public init(maximumKept: Int = 120_000) { self.maximumKept = maximumKept }

    /// exportData(input, options), with the epochs of finer levels that
    /// ended before the horizon taken from earlier calls (and kept for
    /// later ones). `input` is what exportInput reads for `options`.
    public mutating func data(_ input: ReportInput, _ options: ExportOptions, stableMarginNs: Nanoseconds) throws -> String {
        let widths = exportLevelWidths(options)
        // The whole window's level is made afresh every time, but for the
        // runs of summarized path hours it took before (a year is 87,600).
        let coarsest = try exportFigures(input, options, widths: [widths.last!], pathRuns: pathRuns)
        let whole = coarsest.reports[0]
        madeEpochs = whole.targets.reduce(0) { $0 + $1.epochs.count }
        let names = whole.targets.map(\.target)
        if names != targets { levels = [:]; targets = names }
        levels = levels.filter { widths.dropLast().contains($0.key) }
        var horizon = options.report.until - stableMarginNs
        if exportUsesSummaries(options) {
            horizon = min(horizon, input.summaries.map { $0.hourNs + summaryHourNs }.max() ?? Nanoseconds.min)
        }
        var reports: [Report] = []
        for width in widths.dropLast() {
            reports.append(try level(width, input, options, horizon: horizon, whole: whole))
        }
        reports.append(whole)
        kept = levels.values.reduce(0) { $0 + $1.count } * names.count
        return try renderExportData(
            ExportFigures(reports: reports, histograms: coarsest.histograms, classified: coarsest.classified), options)
    }

    /// The report of one finer level: `whole` with this width's epochs.
    private mutating func level(_ width: Nanoseconds, _ input: ReportInput, _ options: ExportOptions,
                                horizon: Nanoseconds, whole: Report) throws -> Report {
        var o = options.report
        o.epochNs = width
        let periods = try epochPeriods(o)
        var keptHere = (levels[width] ?? [:]).filter { $0.key > o.since }
        var epochs = [[Epoch]](repeating: [], count: whole.targets.count)
        for t in epochs.indices { epochs[t].reserveCapacity(periods.count) }
        func keptEpoch(_ k: Int) -> KeptEpoch? {
            guard periods[k].0 > o.since, let hit = keptHere[periods[k].0], hit.end == periods[k].1 else { return nil }
            return hit
        }
        let room = maximumKept / max(1, whole.targets.count) - levels.filter { $0.key != width }.values.reduce(0) { $0 + $1.count }
        var k = 0
        while k < periods.count {
            if let hit = keptEpoch(k) {
                for t in epochs.indices { epochs[t].append(hit.epochs[t]) }
                k += 1
                continue
            }
            // A run of epochs not kept: one report over exactly their span.
            var j = k + 1
            while j < periods.count && keptEpoch(j) == nil { j += 1 }
            var part = options
            part.report.since = periods[k].0
            part.report.until = periods[j - 1].1
            let made = try exportFigures(input.hours(meeting: part.report.since, part.report.until), part,
                                         widths: [width], histograms: false).reports[0]
            for (t, target) in made.targets.enumerated() { epochs[t] += target.epochs }
            madeEpochs += (j - k) * made.targets.count
            for (e, epoch) in (made.targets.first?.epochs ?? []).enumerated()
            where epoch.start > o.since && epoch.end <= horizon && keptHere.count < room {
                keptHere[epoch.start] = KeptEpoch(end: epoch.end, epochs: made.targets.map { $0.epochs[e] })
            }
            k = j
        }
        levels[width] = keptHere
        var report = whole
        report.epochNs = width
        for t in report.targets.indices { report.targets[t].epochs = epochs[t] }
        // The level's percentiles are approximate when one of its periods took
        // a summary: when the summary path takes any hour at this width.
        let selected = Set(try selectTargets(input.targets, o.targets).map(\.id))
        let grid = EpochStarts(periods)
        report.percentilesApproximate = input.summaries.contains {
            selected.contains($0.targetID) && summaryIsExact($0, o, epochs: grid)
        }
        return report
    }
}

/// One kept epoch of every target, in the page's target order.
struct KeptEpoch: Sendable {
    var end: Nanoseconds
    var epochs: [Epoch]
}
