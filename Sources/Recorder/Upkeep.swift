// The hourly upkeep of the history: summaries, compaction into blocks,
// retention. Reports read raw probes wherever a summary is missing, so
// each part may lag without changing what a report says.
//
// It runs on a thread and a connection of its own (UpkeepLoop), so the
// writer's batches keep committing while it reads an hour: every write it
// makes is a short transaction (Database+Compaction), and before each one
// it lets the writer go first (WriteTurn).

import Store

extension RecorderService {
    /// The upkeep's thread: one Maintenance step per --flush period, on its
    /// own connection to the database, until the recorder stops. A stop is
    /// seen before its next transaction, so it never delays the last batch
    /// by more than one of them; a stop in the middle of its work leaves
    /// what the next run finishes (every step is crash-safe).
    struct UpkeepLoop: Sendable {
        let databasePath: String
        let retainNs: Int64?
        let periodNs: Int64
        let turn: WriteTurn
        let clock: any RecorderClock
        let log: @Sendable (String) -> Void

        struct Stopped: Error {}
        static let checkpointEveryNs: Int64 = 10_000_000_000

        func run(_ threads: RecorderThreads) {
            var db: Database? = nil
            var maintenance = Maintenance(retainNs: retainNs, log: log)
            var next = clock.monotonicNs()
            var nextCheckpoint = next
            while !threads.isStopping {
                let now = clock.monotonicNs()
                if now < next {
                    clock.sleep(untilMonotonicNs: min(next, now + 100_000_000))
                    continue
                }
                next = now + periodNs
                // While the writer holds probes it could not write, those
                // come first: the upkeep's writes would only compete.
                if turn.writerIsHolding { continue }
                do {
                    if db == nil { db = try open(threads) }
                    maintenance.step(db!, wallNs: clock.wallNs())
                    // The writer leaves checkpoints to us: its commits
                    // would otherwise copy our writes into the file. Every
                    // 10 s at most: each one syncs the file (a WAL of 10 s
                    // of batches is a few MB at 10,000 probes/s).
                    if now >= nextCheckpoint {
                        db!.checkpoint()
                        nextCheckpoint = now + Self.checkpointEveryNs
                    }
                } catch {
                    maintenance.failed(error)
                }
            }
        }

        /// The upkeep's connection: the recorder's settings (a small page
        /// cache for the main file, the WAL cut back after checkpoints), and
        /// the writer first before each of its transactions.
        private func open(_ threads: RecorderThreads) throws -> Database {
            let db = try Database(path: databasePath, mode: .readWrite)
            try db.limitPageCache(kibibytes: 512)
            try db.limitWALSize(bytes: 16 << 20)
            db.beforeWriteTransaction = { [turn] in
                turn.yield()
                if threads.isStopping { throw Stopped() }
            }
            return db
        }
    }

    /// One bounded step of the upkeep, run once per --flush period:
    ///   1. hour summaries: one complete hour (all its targets) that ended
    ///      more than 30 minutes ago (replies are matched for 10 minutes, so
    ///      such an hour's rows are final); one hour per step catches up a
    ///      year-old database (8,760 hours) in under three hours of recording;
    ///   2. compaction: one hour (all its targets) into blocks, for hours
    ///      that ended more than 30 minutes ago;
    ///   3. retention (--retain): once an hour, one step per flush of the
    ///      retention run `pingem prune` makes too (Database.Pruning): prune
    ///      steps until nothing before the cutoff is left (a prune step
    ///      summarizes the hours it deletes first), then incremental vacuum
    ///      steps until the free pages are given back;
    ///   4. when a step has nothing of 1 to 3 to do: one hour whose summary
    ///      an older build wrote, summarized again in the current encoding
    ///      and given its path summaries (Database.resummarize: an hour whose
    ///      probes were pruned keeps its own), so a history recorded before
    ///      it needs no command to serve /metrics and long reports from
    ///      summaries; at one hour per flush a year takes about two and a
    ///      half hours.
    /// Reports read raw probes wherever a summary is missing.
    /// A failure is said once on stderr and retried at the next step.
    struct Maintenance {
        static let compactAfterNs: Int64 = 30 * 60 * 1_000_000_000
        static let summarizePerStep = 1  // one hour, all its targets
        static let pruneEveryNs: Int64 = 3_600_000_000_000

        let retainNs: Int64?
        let log: (String) -> Void
        var nextPruneNs: Int64 = .min
        /// This hour's retention run, until it is done.
        var pruning: Database.Pruning? = nil
        var failing = false
        var saidNoIncrementalVacuum = false
        /// The hours with outdated summaries not yet looked at, oldest last;
        /// nil until the first idle step lists them.
        var outdated: [Int64]? = nil

        init(retainNs: Int64?, log: @escaping (String) -> Void = { RecorderLog.line($0) }) {
            self.retainNs = retainNs
            self.log = log
        }

        mutating func step(_ db: Database, wallNs: Int64) {
            do {
                // Summaries first: they read the hour through forEachProbe,
                // rows or blocks alike, so the order is only about freshness.
                let summarized = try db.summarizeHours(endingBy: wallNs - Self.compactAfterNs, maxHours: Self.summarizePerStep)
                let compacted = try db.compact(hoursEndingBefore: wallNs - Self.compactAfterNs, limit: 1)
                if let retainNs { try retain(db, retainNs: retainNs, wallNs: wallNs) }
                if summarized == 0 && compacted == 0 && pruning?.isDone ?? true { try refreshOutdated(db) }
                if failing { log("maintenance works again (summaries, compaction, retention)") }
                failing = false
            } catch {
                failed(error)
            }
        }

        /// Said once until a step works again; a stop is no failure.
        mutating func failed(_ error: any Error) {
            if error is UpkeepLoop.Stopped { return }
            if !failing { log("maintenance failed (\(error)); the probes are safe, retrying every flush") }
            failing = true
        }

        /// Step 4: one outdated hour summarized again, or passed over for good.
        private mutating func refreshOutdated(_ db: Database) throws {
            if outdated == nil { outdated = Array(try db.outdatedSummaryHours().reversed()) }
            guard let hour = outdated?.last else { return }
            try db.resummarize(hour: hour)
            outdated?.removeLast()
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
                log("this database was made before incremental vacuum: pruned space is reused but not given back; run pingem prune once to convert it")
                saidNoIncrementalVacuum = true
            }
        }
    }
}
