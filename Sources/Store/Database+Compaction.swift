// Compaction: a complete target-hour whose end is older than a cutoff moves
// from probe rows into one `block` row (BlockCodec). The probe's first reply
// moves with it: the smallest rtt_ns of probe.rtt_ns and its reply rows goes
// into the block and only that reply row is deleted (or, when the probe row
// held a larger one, the two swap), so `reply` keeps exactly the replies that
// are not a probe's first. That is the meaning schema.sql documents, so every
// reader that takes "first = smallest" (reports, export, serve, dump) sees
// the same history before, during and after compaction.
//
// In short transactions, because the recorder's writer must not wait for it:
// an hour at 10,000 probes/s is 36 million rows, and doing it in one
// transaction held the write lock for 52 s (a kill -9 then lost every probe
// the writer held). The steps (`compactHour`):
//   1. copy the hour's rows into a temporary table keyed (target, time), in
//      chunks of about `rowsPerCompactionChunk` rows, each chunk's fingerprint (count
//      and key sum) taken in the same read snapshot: no write lock at all;
//   2. one transaction per target: its block (merged with the block already
//      there), its first replies folded in; the first one also marks the
//      hour in `compacting`. From here the hour's rows are copies until
//      deleted, and readers skip them (Database+Blocks.swift, invariants);
//   3. one transaction per chunk: its rows deleted, in one range when the
//      chunk still has its fingerprint, else only the rows that were copied
//      (a row written into the hour meanwhile, a held batch, stays a row for
//      the next compaction); the last one ends the hour's `compacting` mark.
// A crash or a stop between any two steps leaves a history that reads the
// same; the next compaction of the hour finishes it.

internal import CSQLite

extension Database {
    /// Moves complete hours that ended at or before `cutoff` from probe rows
    /// into blocks, oldest first, a whole hour (every target) at a time,
    /// until at least `limit` target-hours are done, and the same for path
    /// rounds into path blocks (Database+PathBlocks). Returns how many
    /// target-hours it compacted; none means nothing that old is left.
    ///
    /// A whole hour, because the hour's rows interleave every target (the key
    /// is time first): taking out one target's rows visits and rewrites every
    /// page of the hour. Compacting target by target did that once per
    /// target: at 100 targets at 100 ms, 33 s of CPU and about 9 GB of
    /// write-ahead log per hour of recording. So the hour is copied once,
    /// sorted by target, and its rows deleted in time ranges.
    @discardableResult
    public func compact(hoursEndingBefore cutoff: Nanoseconds, limit: Int) throws -> Int {
        var compacted = 0
        var attempts = 0
        while compacted < limit {
            guard let hour = try oldestCompactableHour("probe", "sent_ns", endingBy: cutoff) else { break }
            if let done = try compactHour(hour) {
                compacted += done
                attempts = 0
            } else {
                // Pruned under us twice in a row: leave it to the next call.
                attempts += 1
                if attempts == 2 { break }
            }
        }
        // Path rounds on the same cadence, with their own limit: they are
        // small, and waiting for the probes would let them pile up as rows.
        return compacted + (try compactPaths(hoursEndingBefore: cutoff, limit: limit))
    }

    /// The hour of the oldest row of `table` (by `column`, its key's first
    /// column), if it ends by `cutoff`: the next hour to compact.
    func oldestCompactableHour(_ table: String, _ column: String, endingBy cutoff: Nanoseconds) throws -> Nanoseconds? {
        let oldest = try withStatement(
            "SELECT \(column) FROM \(table) WHERE \(column) >= ?1 AND \(column) < ?2 ORDER BY \(column) LIMIT 1"
        ) { statement -> Int64? in
            statement.bind(Database.compactableSent.lowerBound, at: 1)
            statement.bind(Database.compactableSent.upperBound, at: 2)
            return try statement.step() ? statement.int64(at: 0) : nil
        }
        guard let oldest else { return nil }
        let hour = Database.blockStart(of: oldest)
        return hour <= cutoff - Database.blockSpanNs ? hour : nil
    }

    /// A stretch [from, to) of the hour's rows as copied, with its fingerprint.
    private struct CopiedChunk {
        var from, to: Nanoseconds
        var fingerprint: [Int64]
        /// The send time of its first row.
        var firstSent: Nanoseconds
    }

    /// One hour of rows into blocks, in the steps the file's header lists;
    /// nil when rows the copy holds were deleted before its blocks were
    /// written (a `pingem prune` in another process): it starts over.
    private func compactHour(_ start: Nanoseconds) throws -> Int? {
        let end = start + Database.blockSpanNs
        // The copy lives in SQLite's temporary file (in /var/tmp, unlinked):
        // about 25 bytes a probe, 84 MB for an hour at 1,000 probes/s. With
        // auto_vacuum the file gives that space back when the table is
        // dropped (the setting takes effect while the temporary database is
        // still empty, which it is between hours).
        try run("PRAGMA temp.auto_vacuum=FULL")
        try run("DROP TABLE IF EXISTS temp.compaction")
        try run("""
            CREATE TEMP TABLE compaction(
                target_id INTEGER NOT NULL, sent_ns INTEGER NOT NULL, rtt_ns INTEGER, send_error INTEGER,
                PRIMARY KEY (target_id, sent_ns)) WITHOUT ROWID
            """)
        defer { try? run("DROP TABLE IF EXISTS temp.compaction") }
        let chunks = try copyHour(start, end)
        guard let first = chunks.first else { return 0 }
        try compactionPhase?(.copied)
        var blocks = 0
        for target in try targets().map(\.id) {
            // Read before the transaction: the copy is ours alone.
            var probes = try fetchAll(
                "SELECT sent_ns, rtt_ns, send_error FROM temp.compaction WHERE target_id = ?1 ORDER BY sent_ns",
                bind: { $0.bind(target, at: 1) }) { row in
                ProbeRecord(sentNs: row.int64(at: 0), targetID: target, rttNs: row.optionalInt64(at: 1),
                            sendError: row.optionalInt64(at: 2).map { Int32(truncatingIfNeeded: $0) })
            }
            guard !probes.isEmpty else { continue }
            let written = try inTransaction {
                try blockFromCopy(target, probes: &probes, start: start, end: end, firstCopied: first.firstSent)
            }
            guard written else { return nil }
            blocks += 1
        }
        try compactionPhase?(.blocksWritten)
        for (i, chunk) in chunks.enumerated() {
            try inTransaction {
                try deleteCopiedRows(chunk)
                if i == chunks.count - 1 {
                    try run("DELETE FROM compacting WHERE start_ns = ?1") { $0.bind(start, at: 1) }
                }
            }
        }
        return blocks
    }

    /// Step 1: the hour's rows into temp.compaction, chunk by chunk, each
    /// chunk's rows and fingerprint read in one snapshot (a transaction that
    /// writes only the temporary database takes no lock on the main file).
    private func copyHour(_ start: Nanoseconds, _ end: Nanoseconds) throws -> [CopiedChunk] {
        var chunks: [CopiedChunk] = []
        var from = start
        while from < end {
            let chunk = try inReadSnapshot { () throws -> CopiedChunk? in
                // The chunk ends where its next row past the chunk's size begins.
                let next = try withStatement("SELECT sent_ns FROM probe WHERE sent_ns >= ?1 AND sent_ns < ?2 ORDER BY sent_ns LIMIT 1 OFFSET ?3") { statement -> Int64? in
                    statement.bind(from, at: 1)
                    statement.bind(end, at: 2)
                    statement.bind(Int64(rowsPerCompactionChunk), at: 3)
                    return try statement.step() ? statement.int64(at: 0) : nil
                }
                let firstSent = try withStatement("SELECT sent_ns FROM probe WHERE sent_ns >= ?1 AND sent_ns < ?2 ORDER BY sent_ns LIMIT 1") { statement -> Int64? in
                    statement.bind(from, at: 1)
                    statement.bind(end, at: 2)
                    return try statement.step() ? statement.int64(at: 0) : nil
                }
                guard let firstSent else { return nil }
                let chunk = CopiedChunk(from: from, to: next ?? end, fingerprint: [], firstSent: firstSent)
                try run("""
                    INSERT INTO temp.compaction
                    SELECT target_id, sent_ns, rtt_ns, send_error FROM main.probe WHERE sent_ns >= ?1 AND sent_ns < ?2
                    """) { statement in
                    statement.bind(chunk.from, at: 1)
                    statement.bind(chunk.to, at: 2)
                }
                return CopiedChunk(from: chunk.from, to: chunk.to, fingerprint: try rowFingerprint(chunk.from, chunk.to),
                                   firstSent: firstSent)
            }
            if let chunk { chunks.append(chunk) }
            from = chunk?.to ?? end
        }
        return chunks
    }

    /// Count and a sum of the keys of the probe rows in [from, to).
    /// (At most 2^26 rows an hour, each term below 2^31: no overflow.)
    private func rowFingerprint(_ from: Nanoseconds, _ to: Nanoseconds) throws -> [Int64] {
        try withStatement("""
            SELECT count(*), coalesce(sum(sent_ns % 1000000007 + target_id % 1000000007), 0)
            FROM main.probe WHERE sent_ns >= ?1 AND sent_ns < ?2
            """) { statement in
            statement.bind(from, at: 1)
            statement.bind(to, at: 2)
            _ = try statement.step()
            return [statement.int64(at: 0), statement.int64(at: 1)]
        }
    }

    /// Step 2, inside its transaction: one target's copied rows of the hour
    /// into its block. Returns false, writing nothing, when the hour's first
    /// copied row is gone: prune deletes from the oldest end, so any prune
    /// since the copy took it, and the copy is stale.
    private func blockFromCopy(_ target: Int64, probes: inout [ProbeRecord], start: Nanoseconds, end: Nanoseconds,
                               firstCopied: Nanoseconds) throws -> Bool {
        let stillThere = try withStatement("SELECT 1 FROM probe WHERE sent_ns = ?1 LIMIT 1") { statement in
            statement.bind(firstCopied, at: 1)
            return try statement.step()
        }
        guard stillThere else { return false }
        try run("INSERT OR IGNORE INTO compacting(start_ns) VALUES (?1)") { $0.bind(start, at: 1) }
        try compactTarget(target, probes: &probes, start: start, end: end)
        return true
    }

    /// Step 3, inside its transaction: the chunk's copied rows deleted.
    private func deleteCopiedRows(_ chunk: CopiedChunk) throws {
        if try rowFingerprint(chunk.from, chunk.to) == chunk.fingerprint {
            try run("DELETE FROM probe WHERE sent_ns >= ?1 AND sent_ns < ?2") { statement in
                statement.bind(chunk.from, at: 1)
                statement.bind(chunk.to, at: 2)
            }
            return
        }
        // Rows came (or went) since the copy: only what was copied goes.
        try run("""
            DELETE FROM probe WHERE sent_ns >= ?1 AND sent_ns < ?2 AND EXISTS (
                SELECT 1 FROM temp.compaction AS c WHERE c.target_id = probe.target_id AND c.sent_ns = probe.sent_ns)
            """) { statement in
            statement.bind(chunk.from, at: 1)
            statement.bind(chunk.to, at: 2)
        }
    }

    /// One target's rows of the hour into its block, merged with the block
    /// already there (rows that arrived after an earlier compaction; a row
    /// under a key the block holds is its copy, left by a compaction that
    /// stopped before deleting it, and the block's probe wins).
    /// `probes` (the rows, in send order) is worked on in place: a copy of
    /// it was 11 MB at 100 probes/s per target.
    private func compactTarget(_ target: Int64, probes: inout [ProbeRecord], start: Nanoseconds, end: Nanoseconds) throws {
        if let stored = try blockProbes(target: target, start: start), !stored.isEmpty {
            let plain = probes
            var merged: [ProbeRecord] = []
            merged.reserveCapacity(stored.count + plain.count)
            var i = 0, j = 0
            while i < stored.count || j < plain.count {
                if j < plain.count && i < stored.count && stored[i].sentNs == plain[j].sentNs {
                    j += 1  // a copy
                } else if j == plain.count || (i < stored.count && stored[i].sentNs < plain[j].sentNs) {
                    merged.append(stored[i]); i += 1
                } else {
                    merged.append(plain[j]); j += 1
                }
            }
            probes = merged
        }
        try foldFirstReplies(into: &probes, target: target, start: start, end: end)
        try storeBlock(probes, target: target, start: start)
    }

    /// Puts each probe's first reply (the smallest rtt) into `probes` and
    /// takes it out of `reply`; a larger rtt the probe held goes to `reply`
    /// in its place (it is a duplicate), so the multiset of replies is kept.
    private func foldFirstReplies(into probes: inout [ProbeRecord], target: Int64, start: Nanoseconds, end: Nanoseconds) throws {
        let replies = try fetchAll("""
            SELECT rowid, sent_ns, rtt_ns FROM reply
            WHERE sent_ns >= ?1 AND sent_ns < ?2 AND target_id = ?3 ORDER BY sent_ns, rtt_ns
            """, bind: { statement in
                statement.bind(start, at: 1)
                statement.bind(end, at: 2)
                statement.bind(target, at: 3)
            }) { row in (rowid: row.int64(at: 0), sent: row.int64(at: 1), rtt: row.int64(at: 2)) }
        guard !replies.isEmpty else { return }
        var index = 0  // probes are sorted by sent_ns: walk both lists once
        var previousSent: Int64? = nil
        for reply in replies {
            // Only the smallest reply of each probe can be its first.
            if reply.sent == previousSent { continue }
            previousSent = reply.sent
            while index < probes.count && probes[index].sentNs < reply.sent { index += 1 }
            guard index < probes.count, probes[index].sentNs == reply.sent else { continue }  // no such probe: kept as it is
            if let held = probes[index].rttNs {
                guard reply.rtt < held else { continue }
                try run("UPDATE reply SET rtt_ns = ?1 WHERE rowid = ?2") { statement in
                    statement.bind(held, at: 1)
                    statement.bind(reply.rowid, at: 2)
                }
            } else {
                try run("DELETE FROM reply WHERE rowid = ?1") { $0.bind(reply.rowid, at: 1) }
            }
            probes[index].rttNs = reply.rtt
        }
    }

    /// The probe rows that are copies of probes in blocks (hours marked in
    /// `compacting`), and how many of them hold an rtt_ns: what counts of
    /// rows plus block probes count twice.
    /// `before`: only of the hours that end by then.
    func copiedRows(before: Nanoseconds = .max) throws -> (probes: Int64, withRTT: Int64) {
        guard try userVersion() >= 4 else { return (0, 0) }
        let hours = try fetchAll("SELECT start_ns FROM compacting WHERE start_ns <= ?1 - \(Database.blockSpanNs)",
                                 bind: { $0.bind(before, at: 1) }) { $0.int64(at: 0) }
        var copies: (probes: Int64, withRTT: Int64) = (0, 0)
        for hour in hours {
            let end = hour + Database.blockSpanNs
            let raw = try withStatement("""
                SELECT (SELECT count(*) FROM probe WHERE sent_ns >= ?1 AND sent_ns < ?2)
                     + (SELECT coalesce(sum(count), 0) FROM block WHERE start_ns = ?1),
                       (SELECT count(rtt_ns) FROM probe WHERE sent_ns >= ?1 AND sent_ns < ?2)
                     + (SELECT coalesce(sum(replied), 0) FROM block WHERE start_ns = ?1)
                """) { statement in
                statement.bind(hour, at: 1)
                statement.bind(end, at: 2)
                _ = try statement.step()
                return (statement.int64(at: 0), statement.int64(at: 1))
            }
            var merged: (probes: Int64, withRTT: Int64) = (0, 0)
            try mergedProbes(from: hour, to: end, targets: nil) { probe in
                merged.probes += 1
                if probe.rttNs != nil { merged.withRTT += 1 }
            }
            copies.probes += raw.0 - merged.probes
            copies.withRTT += raw.1 - merged.withRTT
        }
        return copies
    }
}

/// Where a compaction is, for tests that act between its steps.
enum CompactionPhase {
    case copied, blocksWritten
    /// A path block written, its rows not yet deleted (same transaction).
    case pathBlockStored
    /// A target-hour of path rounds moved (committed).
    case pathHourMoved
}
