// Blocks (one target's probes of one UTC hour, BlockCodec), the merged read
// path, and retention. Compaction, which writes the blocks, is in
// Database+Compaction.swift.
//
// Invariants:
//   * Every probe is in exactly one place: a probe row or a block, with one
//     exception: while an hour is being compacted (its `compacting` row),
//     some of its rows are copies of probes already in their block, deleted
//     chunk by chunk. A row whose (sent_ns, target_id) is also in its
//     target's block of the hour is such a copy, and readers take the
//     block's probe and skip the row. Writers never store a new probe under
//     a key a block holds (insertProbes), so the rule has no other case.
//   * A block holds probes of one target sent in [start_ns, start_ns + 1 h),
//     start_ns a multiple of an hour in UTC; count, replied, first_sent_ns
//     and last_sent_ns agree with its data (checked on every decode).
//   * Rows that arrive later for an already compacted hour (a recorder that
//     held its batches while the disk was full, a wall clock stepped back)
//     are plain rows like any other, and the next compaction of that hour
//     merges them into its block.

internal import CSQLite

extension Database {
    /// A block covers one aligned UTC hour.
    public static let blockSpanNs: Nanoseconds = 3_600_000_000_000

    /// Send times whose hour arithmetic could overflow Int64 stay plain rows.
    static let compactableSent = (Int64.min + 2 * blockSpanNs)..<(Int64.max - 2 * blockSpanNs)

    static func blockStart(of sentNs: Nanoseconds) -> Nanoseconds {
        let remainder = sentNs % blockSpanNs
        return remainder >= 0 ? sentNs - remainder : sentNs - remainder - blockSpanNs
    }

    /// Writes (or replaces, or with no probes deletes) one block row.
    func storeBlock(_ probes: [ProbeRecord], target: Int64, start: Nanoseconds) throws {
        guard let first = probes.first, let last = probes.last else {
            try run("DELETE FROM block WHERE start_ns = ?1 AND target_id = ?2") { statement in
                statement.bind(start, at: 1)
                statement.bind(target, at: 2)
            }
            return
        }
        let data = BlockCodec.encode(probes)
        try withStatement("""
            INSERT OR REPLACE INTO block(start_ns, target_id, count, replied, first_sent_ns, last_sent_ns, data)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            """) { statement in
            statement.bind(start, at: 1)
            statement.bind(target, at: 2)
            statement.bind(Int64(probes.count), at: 3)
            statement.bind(Int64(probes.count { $0.rttNs != nil }), at: 4)
            statement.bind(first.sentNs, at: 5)
            statement.bind(last.sentNs, at: 6)
            data.withUnsafeBytes { bytes in
                let code = sqlite3_bind_blob(statement.sqliteStatement, 7, bytes.baseAddress, Int32(bytes.count), SQLITE_TRANSIENT)
                precondition(code == SQLITE_OK, "bind blob: \(code)")
            }
            try statement.run()
        }
    }

    /// The probes of one block, or nil when there is none.
    func blockProbes(target: Int64, start: Nanoseconds) throws -> [ProbeRecord]? {
        try withStatement("""
            SELECT start_ns, target_id, count, replied, first_sent_ns, last_sent_ns, data FROM block
            WHERE start_ns = ?1 AND target_id = ?2
            """) { statement -> [ProbeRecord]? in
            statement.bind(start, at: 1)
            statement.bind(target, at: 2)
            guard try statement.step() else { return nil }
            var probes: [ProbeRecord] = []
            try Database.decodeBlockRow(statement, into: &probes)
            return probes
        }
    }

    /// Decodes the block row the statement is on (columns start_ns,
    /// target_id, count, replied, first_sent_ns, last_sent_ns, data) and
    /// checks it against its columns.
    static func decodeBlockRow(_ statement: Statement, into probes: inout [ProbeRecord]) throws {
        let s = statement.sqliteStatement
        let start = sqlite3_column_int64(s, 0)
        let target = sqlite3_column_int64(s, 1)
        let before = probes.count
        let length = Int(sqlite3_column_bytes(s, 6))
        let pointer = sqlite3_column_blob(s, 6)
        try BlockCodec.decode(UnsafeRawBufferPointer(start: pointer, count: pointer == nil ? 0 : length),
                              targetID: target, into: &probes)
        let count = probes.count - before
        var replied = 0
        for i in before..<probes.count where probes[i].rttNs != nil { replied += 1 }
        guard count > 0, Int64(count) == sqlite3_column_int64(s, 2), Int64(replied) == sqlite3_column_int64(s, 3),
              probes[before].sentNs == sqlite3_column_int64(s, 4), probes[probes.count - 1].sentNs == sqlite3_column_int64(s, 5),
              blockStart(of: probes[before].sentNs) == start, blockStart(of: probes[probes.count - 1].sentNs) == start
        else {
            probes.removeSubrange(before...)
            throw BlockCodec.corrupt("the block of target \(target) at \(start) disagrees with its columns")
        }
    }

    /// The block table to read: a schema 1 database opened read-only (no
    /// recorder has migrated it yet) has none, and reads as having no blocks.
    func blockTable() throws -> String {
        try userVersion() >= 2 ? "block" : """
            (SELECT 0 AS start_ns, 0 AS target_id, 0 AS count, 0 AS replied, \
            0 AS first_sent_ns, 0 AS last_sent_ns, x'' AS data WHERE 0)
            """
    }

    /// How many block rows there are (for tests and the benchmark).
    public func blockCount() throws -> Int64 {
        try withStatement("SELECT count(*) FROM block") { statement in
            _ = try statement.step()
            return statement.int64(at: 0)
        }
    }

    // MARK: Reading

    /// Runs `body` in one read snapshot (blocks and rows must agree), unless
    /// the connection is in a transaction already.
    func inReadSnapshot<T>(_ body: () throws -> T) throws -> T {
        guard sqlite3_get_autocommit(sqliteConnection) != 0 else { return try body() }
        try execute("BEGIN")
        defer { _ = sqlite3_exec(sqliteConnection, "COMMIT", nil, nil, nil) }
        return try body()
    }

    /// forEachProbe's merge of blocks and probe rows, both in (sent_ns,
    /// target_id) order. Blocks come an hour at a time: all blocks of one
    /// hour are decoded, clipped to the window and merged with each other
    /// and with the rows (a linear pick of the smallest head: a handful of
    /// targets, cheaper than a heap); rows outside block hours pass through.
    func mergedProbes(from: Nanoseconds, to: Nanoseconds, targets: Set<Int64>?, _ body: (ProbeRecord) throws -> Void) throws {
        let blockFrom = from > Int64.min + Database.blockSpanNs ? from - Database.blockSpanNs : Int64.min
        try withStatement("""
            SELECT sent_ns, target_id, rtt_ns, send_error FROM probe
            WHERE sent_ns >= ?1 AND sent_ns < ?2 ORDER BY sent_ns, target_id
            """) { rows in
            rows.bind(from, at: 1)
            rows.bind(to, at: 2)
            let r = rows.sqliteStatement
            var head: ProbeRecord? = nil
            func nextRow() throws -> ProbeRecord? {
                while try rows.step() {
                    let targetID = sqlite3_column_int64(r, 1)
                    if let targets, !targets.contains(targetID) { continue }
                    return ProbeRecord(
                        sentNs: sqlite3_column_int64(r, 0), targetID: targetID, rttNs: rows.optionalInt64(at: 2),
                        sendError: rows.optionalInt64(at: 3).map { Int32(truncatingIfNeeded: $0) })
                }
                return nil
            }
            head = try nextRow()

            try withStatement("""
                SELECT start_ns, target_id, count, replied, first_sent_ns, last_sent_ns, data FROM \(try blockTable())
                WHERE start_ns > ?1 AND start_ns < ?2 AND last_sent_ns >= ?3 ORDER BY start_ns, target_id
                """) { blocks in
                blocks.bind(blockFrom, at: 1)
                blocks.bind(to, at: 2)
                blocks.bind(from, at: 3)
                let b = blocks.sqliteStatement
                var decoded: [[ProbeRecord]] = []   // one per block of the hour, reused
                var lower: [Int] = [], upper: [Int] = []
                var hasRow = try blocks.step()
                while hasRow {
                    let hour = sqlite3_column_int64(b, 0)
                    var used = 0
                    while hasRow && sqlite3_column_int64(b, 0) == hour {
                        let targetID = sqlite3_column_int64(b, 1)
                        if targets?.contains(targetID) ?? true {
                            if used == decoded.count { decoded.append([]); lower.append(0); upper.append(0) }
                            decoded[used].removeAll(keepingCapacity: true)
                            try Database.decodeBlockRow(blocks, into: &decoded[used])
                            // Clip to [from, to): sent_ns never decreases in a block.
                            lower[used] = decoded[used].partitioningIndex { $0.sentNs >= from }
                            upper[used] = decoded[used].partitioningIndex { $0.sentNs >= to }
                            if lower[used] < upper[used] { used += 1 }
                        }
                        hasRow = try blocks.step()
                    }
                    while true {
                        var best = -1
                        var bestSent = Int64.max, bestTarget = Int64.max
                        for c in 0..<used where lower[c] < upper[c] {
                            let p = decoded[c][lower[c]]
                            if p.sentNs < bestSent || (p.sentNs == bestSent && p.targetID < bestTarget) {
                                best = c; bestSent = p.sentNs; bestTarget = p.targetID
                            }
                        }
                        if best < 0 { break }
                        while let row = head, row.sentNs < bestSent || (row.sentNs == bestSent && row.targetID < bestTarget) {
                            try body(row)
                            head = try nextRow()
                        }
                        // A row under the block probe's own key is its copy,
                        // left by a compaction still deleting the hour's rows.
                        if let row = head, row.sentNs == bestSent && row.targetID == bestTarget { head = try nextRow() }
                        try body(decoded[best][lower[best]])
                        lower[best] += 1
                    }
                }
            }
            while let row = head {
                try body(row)
                head = try nextRow()
            }
        }
    }

    // MARK: Retention

    /// What one prune step did.
    public struct PruneStep: Sendable, Equatable {
        /// Probes deleted (rows and probes inside blocks).
        public var probes: Int64
        /// Reply and ICMP error rows deleted, and path probes (rows and
        /// inside path blocks).
        public var otherRows: Int64
        /// Nothing sent before the cutoff is left.
        public var done: Bool
    }

    /// Deletes, in one short transaction, the oldest raw rows of probes sent
    /// before `cutoff`: probe rows, blocks (a block reaching past the cutoff
    /// is rewritten with its younger probes), replies and ICMP errors; about
    /// `maxRows` probe rows or an hour of history at a time. Sessions, gaps,
    /// targets and addresses stay: reports of a pruned window say "no data"
    /// for lack of probes, and coverage stays true.
    ///
    /// KEEP: only these four raw tables are pruned. Hour summaries are what
    /// makes old history worth keeping after its raw probes are gone: never
    /// delete them here. Every hour a prune touches is summarized before
    /// any of its probes goes (a step that summarizes deletes nothing), so a
    /// summary is always built from the whole hour. The cutoff's own hour
    /// must therefore be complete: callers keep at least two hours.
    public func pruneStep(sentBefore cutoff: Nanoseconds, maxRows: Int = 20_000) throws -> PruneStep {
        let lastTouchedHourEnd = Database.blockStart(of: cutoff - 1) + Database.blockSpanNs
        if try summarizeHours(endingBy: lastTouchedHourEnd, maxHours: 4) > 0 {
            return PruneStep(probes: 0, otherRows: 0, done: false)
        }
        return try inTransaction {
            func first(_ sql: String) throws -> Int64? {
                try withStatement(sql) { statement -> Int64? in
                    statement.bind(cutoff, at: 1)
                    _ = try statement.step()
                    return statement.optionalInt64(at: 0)
                }
            }
            let oldest = [
                try first("SELECT min(sent_ns) FROM probe WHERE sent_ns < ?1"),
                // The oldest blocks by key, not a scan of every block: only
                // the cutoff's own hour can hold blocks (already cut) whose
                // first probe is younger than the cutoff.
                try first("""
                    SELECT min(first_sent_ns) FROM (
                        SELECT first_sent_ns FROM block WHERE start_ns < ?1 ORDER BY start_ns, target_id LIMIT 10000
                    ) WHERE first_sent_ns < ?1
                    """),
                try first("SELECT min(sent_ns) FROM reply WHERE sent_ns < ?1"),
                try first("SELECT min(sent_ns) FROM icmp_error WHERE sent_ns < ?1"),
                try oldestPathRound(before: cutoff),
            ].compactMap { $0 }.min()
            guard let oldest else { return PruneStep(probes: 0, otherRows: 0, done: true) }
            var bound = oldest <= cutoff - Database.blockSpanNs ? oldest + Database.blockSpanNs : cutoff
            // At most maxRows probe rows: stop at the sent_ns of the next one.
            let rowBound = try withStatement("SELECT sent_ns FROM probe WHERE sent_ns >= ?1 ORDER BY sent_ns LIMIT 1 OFFSET ?2") { statement -> Int64? in
                statement.bind(oldest, at: 1)
                statement.bind(Int64(maxRows), at: 2)
                return try statement.step() ? statement.int64(at: 0) : nil
            }
            if let rowBound, rowBound < bound, rowBound > oldest { bound = rowBound }
            // An hour the upkeep is compacting holds its probes twice until
            // its last rows go (a block, and rows that are copies of it):
            // deleted both ways, they count once. (The cutoff's own hour is
            // cut, not deleted whole; its copies, if it is being compacted,
            // still count twice.)
            var probes: Int64 = -(try copiedRows(before: bound).probes), other: Int64 = 0
            func delete(_ sql: String) throws -> Int64 {
                try run(sql) { $0.bind(bound, at: 1) }
                return Int64(sqlite3_changes(sqliteConnection))
            }
            probes += try delete("DELETE FROM probe WHERE sent_ns < ?1")
            other += try delete("DELETE FROM reply WHERE sent_ns < ?1")
            other += try delete("DELETE FROM icmp_error WHERE sent_ns < ?1")
            // Path rounds go with the probes of their time (the same retention).
            other += try prunePaths(before: bound, cutoff: cutoff)
            // Whole blocks that end by the bound.
            probes += try withStatement("SELECT coalesce(sum(count), 0) FROM block WHERE start_ns <= ?1 - \(Database.blockSpanNs)") { statement in
                statement.bind(bound, at: 1)
                _ = try statement.step()
                return statement.int64(at: 0)
            }
            try run("DELETE FROM block WHERE start_ns <= ?1 - \(Database.blockSpanNs)") { $0.bind(bound, at: 1) }
            // Hours gone whole have no copies left to delete.
            if try userVersion() >= 4 {
                try run("DELETE FROM compacting WHERE start_ns <= ?1 - \(Database.blockSpanNs)") { $0.bind(bound, at: 1) }
            }
            // The cutoff's own hour: keep the block's probes sent at or after it.
            if bound == cutoff {
                let hour = Database.blockStart(of: cutoff)
                let targets = try fetchAll("SELECT target_id FROM block WHERE start_ns = ?1 AND first_sent_ns < ?2",
                                           bind: { $0.bind(hour, at: 1); $0.bind(cutoff, at: 2) }) { $0.int64(at: 0) }
                for target in targets {
                    let all = try blockProbes(target: target, start: hour) ?? []
                    let kept = all.filter { $0.sentNs >= cutoff }
                    probes += Int64(all.count - kept.count)
                    try storeBlock(kept, target: target, start: hour)
                }
            }
            // A step that found rows before the cutoff always deletes some;
            // if it could not, another step would not either: stop.
            return PruneStep(probes: probes, otherRows: other, done: probes == 0 && other == 0)
        }
    }

    /// Whether freed pages can be given back in steps (auto_vacuum=INCREMENTAL,
    /// which every database made by this version has).
    public func hasIncrementalVacuum() throws -> Bool {
        try withStatement("PRAGMA auto_vacuum") { statement in
            _ = try statement.step()
            return statement.int64(at: 0) == 2
        }
    }

    /// One-time switch of an older database (auto_vacuum=NONE) to
    /// incremental vacuum: a full VACUUM, which holds the write lock until it
    /// is done (a running recorder holds its probes in memory meanwhile).
    public func convertToIncrementalVacuum() throws {
        try execute("PRAGMA auto_vacuum=INCREMENTAL")
        try execute("VACUUM")
    }

    /// Gives up to `pages` free pages back to the file system in one short
    /// transaction. Returns the free pages left.
    @discardableResult
    public func incrementalVacuumStep(pages: Int = 256) throws -> Int64 {
        // Without incremental vacuum the pragma does nothing: nothing to wait for.
        guard try hasIncrementalVacuum() else { return 0 }
        try inTransaction {
            // PRAGMA takes no bound parameters; the value is our own integer.
            try execute("PRAGMA incremental_vacuum(\(max(1, pages)))")
        }
        return try withStatement("PRAGMA freelist_count") { statement in
            _ = try statement.step()
            return statement.int64(at: 0)
        }
    }

    /// Where a retention run is: prune steps until nothing sent before the
    /// cutoff is left, then incremental vacuum steps until the pages freed
    /// are given back (at most the free pages / 256 + 2 steps: a running
    /// recorder frees pages too, by compaction). Each step is one short
    /// transaction; between steps others write. `pingem prune` runs the steps
    /// back to back, the recorder one per flush.
    public struct Pruning: Sendable {
        public let cutoff: Nanoseconds
        /// Deleted so far: probes (rows and inside blocks), and reply and
        /// ICMP error rows.
        public private(set) var probes: Int64 = 0
        public private(set) var otherRows: Int64 = 0
        public private(set) var isDone = false
        /// The database was made before incremental vacuum: pruned space is
        /// reused but not given back until convertToIncrementalVacuum.
        public private(set) var lacksIncrementalVacuum = false
        private var pruned = false
        private var vacuumStepsLeft: Int64? = nil

        public init(cutoff: Nanoseconds) { self.cutoff = cutoff }

        /// One step; returns isDone.
        @discardableResult
        public mutating func step(_ db: Database) throws -> Bool {
            guard !isDone else { return true }
            if !pruned {
                let step = try db.pruneStep(sentBefore: cutoff)
                probes += step.probes
                otherRows += step.otherRows
                pruned = step.done
                return false
            }
            guard try db.hasIncrementalVacuum() else {
                lacksIncrementalVacuum = true
                isDone = true
                return true
            }
            let free = try db.incrementalVacuumStep(pages: 256)
            let left = (vacuumStepsLeft ?? free / 256 + 2) - 1
            vacuumStepsLeft = left
            isDone = free == 0 || left < 0
            return isDone
        }
    }

    /// Ends the WAL file's growth after a big prune: copies it into the
    /// database and truncates it, if no reader holds it (else does nothing).
    public func checkpoint() {
        _ = sqlite3_wal_checkpoint_v2(sqliteConnection, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
    }
}

extension Array {
    /// The first index whose element satisfies `predicate`, for a predicate
    /// that is false then true along the array (binary search).
    func partitioningIndex(where predicate: (Element) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            if predicate(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
