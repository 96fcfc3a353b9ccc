// Summarized hours added up a run at a time: judgePaths adds a window's path
// summaries to its tally in runs of consecutive hours of one UTC day (each
// run's hours appended in order, then the run to the window), on every
// path, so a page made with kept runs equals one made afresh byte for byte:
// the runs do not depend on the epoch widths, only on the hours. Each
// width's epochs get a run's counts in segments that lie inside one epoch
// of every width (integers: the same sums as hour by hour).
//
// Serve's live page judges the same window again every tick (a year is
// 87,600 hour summaries, decoded and added up each time): KeptPathRuns keeps
// each target's runs between ticks, each under a digest of its rows' bytes,
// so a run is taken again only if its rows are exactly the rows it was made
// from (a summary written or rewritten since, by the upkeep's backfill or
// resummarize, changes the digest), and its segments only where they still
// lie inside one epoch of every width.
import Store
import Synchronization

/// One run of consecutive summarized hours of one target, added up.
struct PathRun: Sendable {
    /// Of the rows' hours and bytes (0 when not kept).
    var digest: Int
    /// The run's hours appended in order.
    var tally: PathTally
    /// The rounds that lost the target, in round order (what an outage's
    /// `where` reads).
    var lostRounds: [PathRound]
    /// The run's counts, split where an epoch of some width begins.
    var segments: [Segment]

    struct Segment: Sendable {
        /// The first hour's start and the last hour's end.
        var startNs: Nanoseconds
        var endNs: Nanoseconds
        /// Added to each epoch as counts (one hour's may hold its answers).
        var counts: PathTally
    }
}

/// Runs kept between reports of the same window (serve's live page), by
/// target and by the run's first hour; shared by reference, safe from the
/// threads a report's targets are judged on.
public final class KeptPathRuns: Sendable {
    private let runs = Mutex<[Int64: [Nanoseconds: PathRun]]>([:])
    private let reusedCount = Atomic<Int>(0)

    public init() {}

    /// Runs taken again rather than made, over all reports.
    public var reused: Int { reusedCount.load(ordering: .relaxed) }
    /// Runs kept now.
    public var count: Int { runs.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    func of(_ target: Int64) -> [Nanoseconds: PathRun] { runs.withLock { $0[target] ?? [:] } }

    /// The target's runs of its latest report (the others are let go).
    func keep(_ kept: [Nanoseconds: PathRun], of target: Int64, reused: Int) {
        runs.withLock { $0[target] = kept }
        reusedCount.add(reused, ordering: .relaxed)
    }
}

private let dayNs: Nanoseconds = 86_400_000_000_000

/// The runs of `hours` (by hour): consecutive hours of one UTC day.
func pathRunBounds(_ hours: [PathSummaryRow]) -> [Range<Int>] {
    var bounds: [Range<Int>] = []
    var i = 0
    while i < hours.count {
        let day = floorDivide(hours[i].hourNs, dayNs)
        var j = i + 1
        while j < hours.count && hours[j].hourNs == hours[j - 1].hourNs + summaryHourNs
                && floorDivide(hours[j].hourNs, dayNs) == day { j += 1 }
        bounds.append(i..<j)
        i = j
    }
    return bounds
}

/// The digest a run is kept under: its rows' hours and bytes.
func pathRunDigest(_ rows: ArraySlice<PathSummaryRow>) -> Int {
    var hasher = Hasher()
    for row in rows {
        hasher.combine(row.targetID)
        hasher.combine(row.hourNs)
        hasher.combine(row.data.count)
        row.data.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
    return hasher.finalize()
}

/// The run of `rows`, its hours decoded and added up; segments cut where
/// `sameEpochs` says two hours lie in different epochs of some width.
func makePathRun(_ rows: ArraySlice<PathSummaryRow>, digest: Int,
                 sameEpochs: (Nanoseconds, Nanoseconds) -> Bool) -> PathRun {
    var run = PathRun(digest: digest, tally: PathTally(), lostRounds: [], segments: [])
    for row in rows {
        // Checked by exactPathSummaries, which read raw rounds instead.
        guard let hour = try? row.decoded() else { continue }
        run.tally.append(hour.tally)
        run.lostRounds += hour.lostRounds
        if let last = run.segments.last, last.endNs == row.hourNs, sameEpochs(last.startNs, row.hourNs) {
            let s = run.segments.count - 1
            if run.segments[s].counts.keepingAnswers {
                // A second hour: from here on only counts are added up.
                var counts = PathTally(keepingAnswers: false)
                counts.append(run.segments[s].counts)
                run.segments[s].counts = counts
            }
            run.segments[s].counts.append(hour.tally)
            run.segments[s].endNs = row.hourNs + summaryHourNs
        } else {
            // One hour's tally as it is (an epoch takes only its counts):
            // an export's hour level makes a segment of every hour.
            run.segments.append(PathRun.Segment(startNs: row.hourNs, endNs: row.hourNs + summaryHourNs, counts: hour.tally))
        }
    }
    return run
}
