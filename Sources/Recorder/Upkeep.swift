// The hourly upkeep of the history: summaries, compaction into blocks,
// retention. Reports read raw probes wherever a summary is missing, so
// each part may lag without changing what a report says.

import Store

extension RecorderService {
    /// The writer's housekeeping, one bounded step after each committed
    /// batch, each part short (the longest, compacting an hour, takes about
    /// 2 s at 1,000 probes/s, once an hour), so the next flush is late by
    /// that at most:
    ///   1. hour summaries: one complete hour (all its targets) that ended
    ///      more than 30 minutes ago (replies are matched for 10 minutes, so
    ///      such an hour's rows are final); one hour per flush catches up a
    ///      year-old database (8,760 hours) in under three hours of recording;
    ///   2. compaction: one hour (all its targets) into blocks, for hours
    ///      that ended more than 30 minutes ago;
    ///   3. retention (--retain): once an hour, one step per flush of the
    ///      retention run `pingem prune` makes too (Database.Pruning): prune
    ///      steps until nothing before the cutoff is left (a prune step
    ///      summarizes the hours it deletes first), then incremental vacuum
    ///      steps until the free pages are given back.
    /// Reports read raw probes wherever a summary is missing.
    /// A failure is said once on stderr and retried at the next flush.
    struct Maintenance {
        static let compactAfterNs: Int64 = 30 * 60 * 1_000_000_000
        static let summarizePerStep = 1  // one hour, all its targets
        static let pruneEveryNs: Int64 = 3_600_000_000_000

        let retainNs: Int64?
        var nextPruneNs: Int64 = .min
        /// This hour's retention run, until it is done.
        var pruning: Database.Pruning? = nil
        var failing = false
        var saidNoIncrementalVacuum = false

        init(retainNs: Int64?) { self.retainNs = retainNs }

        mutating func step(_ db: Database, wallNs: Int64) {
            do {
                // Summaries first: they read the hour through forEachProbe,
                // rows or blocks alike, so the order is only about freshness.
                try db.summarizeHours(endingBy: wallNs - Self.compactAfterNs, maxHours: Self.summarizePerStep)
                try db.compact(hoursEndingBefore: wallNs - Self.compactAfterNs, limit: 1)
                if let retainNs { try retain(db, retainNs: retainNs, wallNs: wallNs) }
                if failing { RecorderLog.line("maintenance works again (summaries, compaction, retention)") }
                failing = false
            } catch {
                if !failing { RecorderLog.line("maintenance failed (\(error)); the probes are safe, retrying every flush") }
                failing = true
            }
        }

        private mutating func retain(_ db: Database, retainNs: Int64, wallNs: Int64) throws {
            if wallNs >= nextPruneNs {
                nextPruneNs = wallNs + Self.pruneEveryNs
                pruning = Database.Pruning(cutoff: wallNs - retainNs)
            }
            guard var run = pruning, !run.isDone else { return }
            try run.step(db)
            pruning = run
            // Freed pages are reused by new probes, so the file stops
            // growing; giving them back needs one full VACUUM, which
            // the recorder never runs (it would hold the lock).
            if run.lacksIncrementalVacuum && !saidNoIncrementalVacuum {
                RecorderLog.line("this database was made before incremental vacuum: pruned space is reused but not given back; run pingem prune once to convert it")
                saidNoIncrementalVacuum = true
            }
        }
    }
}
