// Path blocks (schema 8): one target's path probes of one UTC hour of rounds
// (by round_ns), compacted losslessly into one `path_block` row
// (PathBlockCodec), the merged read path, their compaction and retention.
//
// Invariants:
//   * Every path probe is in exactly one place: a path_probe row or a path
//     block. A target-hour moves in one transaction (its block written,
//     merged with the block already there, and its rows deleted), so no
//     reader snapshot sees a probe twice or not at all, and a stop or a
//     crash at any point leaves either the rows or the block. One
//     transaction is short: a target-hour at the default 30 s is 120 rounds
//     (about 1,500 probes); an hour of rounds every second of a 30-hop path,
//     108,000, about as many rows as one delete chunk of the probe blocks.
//   * Rows that arrive later for a compacted hour (a recorder that held its
//     batches) stay rows until the next compaction of that hour merges them.
//     A row under a key (round_ns, ttl) its block holds would have been
//     ignored by the recorder's INSERT OR IGNORE had the block's probe still
//     been a row: readers and compaction keep the block's, as that would.
//   * Only round_ns in Database.compactableSent is compacted (hour arithmetic
//     near Int64's ends stays rows).

internal import CSQLite

extension Database {
    /// Writes (or replaces, or with no probes deletes) one path block.
    func storePathBlock(_ probes: [PathProbeRecord], target: Int64, start: Nanoseconds) throws {
        guard let first = probes.first, let last = probes.last else {
            try run("DELETE FROM path_block WHERE start_ns = ?1 AND target_id = ?2") { $0.bind(start, at: 1); $0.bind(target, at: 2) }
            return
        }
        try run("""
            INSERT OR REPLACE INTO path_block(start_ns, target_id, count, first_round_ns, last_round_ns, data)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            """) { statement in
            statement.bind(start, at: 1)
            statement.bind(target, at: 2)
            statement.bind(Int64(probes.count), at: 3)
            statement.bind(first.roundNs, at: 4)
            statement.bind(last.roundNs, at: 5)
            statement.bind(PathBlockCodec.encode(probes), at: 6)
        }
    }

    /// The probes of one path block, or [] when there is none.
    func pathBlockProbes(target: Int64, start: Nanoseconds) throws -> [PathProbeRecord] {
        try withStatement("""
            SELECT start_ns, target_id, count, first_round_ns, last_round_ns, data FROM path_block
            WHERE start_ns = ?1 AND target_id = ?2
            """) { statement in
            statement.bind(start, at: 1)
            statement.bind(target, at: 2)
            var probes: [PathProbeRecord] = []
            if try statement.step() { try Database.decodePathBlockRow(statement, into: &probes) }
            return probes
        }
    }

    /// Decodes the path block row the statement is on (columns start_ns,
    /// target_id, count, first_round_ns, last_round_ns, data) and checks it
    /// against its columns.
    static func decodePathBlockRow(_ statement: Statement, into probes: inout [PathProbeRecord]) throws {
        let s = statement.sqliteStatement
        let start = sqlite3_column_int64(s, 0), target = sqlite3_column_int64(s, 1)
        let before = probes.count
        let length = Int(sqlite3_column_bytes(s, 5))
        let pointer = sqlite3_column_blob(s, 5)
        try PathBlockCodec.decode(UnsafeRawBufferPointer(start: pointer, count: pointer == nil ? 0 : length),
                                  targetID: target, into: &probes)
        let block = probes[before...]
        guard let first = block.first, let last = block.last, Int64(block.count) == sqlite3_column_int64(s, 2),
              first.roundNs == sqlite3_column_int64(s, 3), last.roundNs == sqlite3_column_int64(s, 4),
              block.allSatisfy({ blockStart(of: $0.roundNs) == start })
        else {
            probes.removeSubrange(before...)
            throw PathBlockCodec.corrupt("the path block of target \(target) at \(start) disagrees with its columns")
        }
    }

    // MARK: Reading

    /// The path probes of the rounds with from <= round_ns < to, in
    /// (target, round, ttl) order; targets nil = all. Rows and path blocks
    /// merged in one snapshot, so callers never see where a probe is stored.
    /// Empty in a database older than paths (schema 7), opened read-only and
    /// so not migrated.
    public func pathProbes(targets: Set<Int64>?, from: Nanoseconds, to: Nanoseconds) throws -> [PathProbeRecord] {
        try pathProbes(targets: targets, ranges: [(from, to)])
    }

    /// The path probes of the rounds in `ranges` (disjoint, in time order),
    /// in (target, round, ttl) order: target by target, range by range,
    /// written once into an array reserved from the blocks' counts (a week
    /// of 10 targets is 2.7 M probes, which growing, merging or sorting
    /// would copy and fault in again).
    public func pathProbes(targets: Set<Int64>?, ranges: [(Nanoseconds, Nanoseconds)]) throws -> [PathProbeRecord] {
        let ranges = ranges.filter { $0.0 < $0.1 }
        guard !ranges.isEmpty, try userVersion() >= 7 else { return [] }
        return try inReadSnapshot {
            var rows: [Int64: [[PathProbeRecord]]] = [:]
            for (r, (from, to)) in ranges.enumerated() {
                for row in try pathRows(targets: targets, from: from, to: to) {
                    rows[row.targetID, default: Array(repeating: [], count: ranges.count)][r].append(row)
                }
            }
            var counts: [Int64: Int64] = [:]
            for (from, to) in ranges {
                for (target, count) in try pathBlockCounts(from: from, to: to) { counts[target, default: 0] += count }
            }
            let ids = Set(counts.keys).union(rows.keys).filter { targets?.contains($0) ?? true }.sorted()
            var probes: [PathProbeRecord] = []
            probes.reserveCapacity(ids.reduce(0) { $0 + Int(counts[$1] ?? 0) + (rows[$1]?.reduce(0) { $0 + $1.count } ?? 0) })
            for id in ids {
                for (r, (from, to)) in ranges.enumerated() {
                    let start = probes.count
                    if counts[id] != nil { try appendPathBlockProbes(target: id, from: from, to: to, into: &probes) }
                    appendRows(rows[id]?[r] ?? [], after: start, in: &probes)
                }
            }
            return probes
        }
    }

    /// Adds one target's rows of a range to its block probes, probes[start...]
    /// (both in (round, ttl) order), for readers and for compaction alike.
    /// Rows overlap blocks only in hours compacted after they were written;
    /// a key both hold keeps the block's.
    fileprivate func appendRows(_ rows: [PathProbeRecord], after start: Int, in probes: inout [PathProbeRecord]) {
        guard let firstRow = rows.first else { return }
        func key(_ p: PathProbeRecord) -> (Int64, Int) { (p.roundNs, p.ttl) }
        // The usual case: the rows are the recent, uncompacted hours.
        if probes.count == start || key(probes[probes.count - 1]) < key(firstRow) {
            probes += rows
            return
        }
        let blocks = Array(probes[start...])
        let held = Set(blocks.lazy.filter { $0.roundNs >= firstRow.roundNs }.map(PathKey.init))
        let kept = rows.filter { !held.contains(PathKey($0)) }
        probes.removeSubrange(start...)
        var i = 0, j = 0
        while i < blocks.count && j < kept.count {
            if key(kept[j]) < key(blocks[i]) { probes.append(kept[j]); j += 1 } else { probes.append(blocks[i]); i += 1 }
        }
        probes += blocks[i...]
        probes += kept[j...]
    }

    fileprivate struct PathKey: Hashable {
        var target: Int64, round: Int64, ttl: Int
        init(_ probe: PathProbeRecord) { target = probe.targetID; round = probe.roundNs; ttl = probe.ttl }
    }

    /// The path_probe rows with from <= round_ns < to, in (target, round,
    /// ttl) order.
    fileprivate func pathRows(targets: Set<Int64>?, from: Nanoseconds, to: Nanoseconds) throws -> [PathProbeRecord] {
        let rows = try fetchAll("""
            SELECT target_id, round_ns, ttl, to_target, sent_ns, send_error, rtt_ns, source, type, code FROM path_probe
            WHERE round_ns >= ?1 AND round_ns < ?2 AND (?3 IS NULL OR target_id = ?3) ORDER BY target_id, round_ns, ttl
            """, bind: { statement in
                statement.bind(from, at: 1)
                statement.bind(to, at: 2)
                // One target (compaction's case) is filtered in SQL; a set in Swift.
                statement.bind(targets?.count == 1 ? targets!.first! : nil, at: 3)
            }) { row in
            let sent = row.int64(at: 4)
            let from = row.optionalString(at: 7)
            let type = row.optionalInt64(at: 8).map(Int.init)
            return PathProbeRecord(
                targetID: row.int64(at: 0), roundNs: row.int64(at: 1), ttl: Int(row.int64(at: 2)),
                toTarget: row.int64(at: 3) != 0, sentNs: sent, sendError: row.optionalInt64(at: 5).map(Int32.init),
                receivedNs: row.optionalInt64(at: 6).map { sent + $0 }, from: from,
                answer: PathAnswer.stored(type: type, from: from),
                icmpType: type, icmpCode: row.optionalInt64(at: 9).map(Int.init))
        }
        guard let targets else { return rows }
        return rows.filter { targets.contains($0.targetID) }
    }

    /// The path blocks that hold rounds in [from, to): their condition on
    /// start_ns (?1, ?2) and last_round_ns (?3), bound.
    private static let blocksMeeting = "start_ns > ?1 AND start_ns < ?2 AND last_round_ns >= ?3"
    private func bindBlocksMeeting(_ statement: Statement, from: Nanoseconds, to: Nanoseconds) {
        statement.bind(from > Int64.min + Database.blockSpanNs ? from - Database.blockSpanNs : Int64.min, at: 1)
        statement.bind(to, at: 2)
        statement.bind(from, at: 3)
    }

    /// Each target's probes in the path blocks that hold rounds in [from, to).
    private func pathBlockCounts(from: Nanoseconds, to: Nanoseconds) throws -> [(Int64, Int64)] {
        guard try userVersion() >= 8 else { return [] }
        return try fetchAll("SELECT target_id, sum(count) FROM path_block WHERE \(Database.blocksMeeting) GROUP BY target_id",
                            bind: { bindBlocksMeeting($0, from: from, to: to) }) { ($0.int64(at: 0), $0.int64(at: 1)) }
    }

    /// Appends one target's probes of the path blocks that hold rounds in
    /// [from, to) that lie in it, in (round, ttl) order (blocks by hour,
    /// each in round and TTL order).
    private func appendPathBlockProbes(target: Int64, from: Nanoseconds, to: Nanoseconds,
                                       into probes: inout [PathProbeRecord]) throws {
        guard try userVersion() >= 8 else { return }
        try withStatement("""
            SELECT start_ns, target_id, count, first_round_ns, last_round_ns, data FROM path_block
            WHERE \(Database.blocksMeeting) AND target_id = ?4 ORDER BY start_ns
            """) { statement in
            bindBlocksMeeting(statement, from: from, to: to)
            statement.bind(target, at: 4)
            let start = probes.count
            while try statement.step() { try Database.decodePathBlockRow(statement, into: &probes) }
            // Only the blocks of the range's first and last hour reach past it.
            while probes.count > start && probes[probes.count - 1].roundNs >= to { probes.removeLast() }
            let early = probes[start...].prefix { $0.roundNs < from }.count
            if early > 0 { probes.removeSubrange(start..<start + early) }
        }
    }
}

// MARK: Compaction and retention

extension Database {
    /// Moves complete hours of rounds that ended at or before `cutoff` from
    /// path_probe rows into path blocks, oldest first, one target-hour per
    /// transaction, until at least `limit` target-hours are done. Returns
    /// how many it compacted; none means nothing that old is left.
    func compactPaths(hoursEndingBefore cutoff: Nanoseconds, limit: Int) throws -> Int {
        guard try userVersion() >= 8 else { return 0 }
        var compacted = 0
        while compacted < limit {
            guard let hour = try oldestCompactableHour("path_probe", "round_ns", endingBy: cutoff) else { break }
            let targets = try fetchAll(
                "SELECT DISTINCT target_id FROM path_probe WHERE round_ns >= ?1 AND round_ns < ?2 ORDER BY target_id",
                bind: { $0.bind(hour, at: 1); $0.bind(hour + Database.blockSpanNs, at: 2) }) { $0.int64(at: 0) }
            for target in targets {
                try inTransaction { try movePathHour(target: target, start: hour) }
                compacted += 1
                try compactionPhase?(.pathHourMoved)
            }
        }
        return compacted
    }

    /// Inside its transaction: one target's rows of the hour merged into its
    /// path block (the block's probe wins a key both hold), then deleted.
    private func movePathHour(target: Int64, start: Nanoseconds) throws {
        let end = start + Database.blockSpanNs
        var probes = try pathBlockProbes(target: target, start: start)
        appendRows(try pathRows(targets: [target], from: start, to: end), after: 0, in: &probes)
        try storePathBlock(probes, target: target, start: start)
        try compactionPhase?(.pathBlockStored)
        try run("DELETE FROM path_probe WHERE round_ns >= ?1 AND round_ns < ?2 AND target_id = ?3") { statement in
            statement.bind(start, at: 1)
            statement.bind(end, at: 2)
            statement.bind(target, at: 3)
        }
    }

    /// The oldest round_ns before `cutoff` in path rows or path blocks, for
    /// prune's next step (nil: none, or a database older than paths).
    func oldestPathRound(before cutoff: Nanoseconds) throws -> Nanoseconds? {
        guard try userVersion() >= 7 else { return nil }
        var sources = ["SELECT min(round_ns) FROM path_probe WHERE round_ns < ?1"]
        // By key, as for probe blocks: only the cutoff's own hour can hold
        // blocks (already cut) whose first round is younger than the cutoff.
        if try userVersion() >= 8 {
            sources.append("""
                SELECT min(first_round_ns) FROM (
                    SELECT first_round_ns FROM path_block WHERE start_ns < ?1 ORDER BY start_ns, target_id LIMIT 10000
                ) WHERE first_round_ns < ?1
                """)
        }
        return try sources.compactMap { sql in
            try withStatement(sql) { statement -> Int64? in
                statement.bind(cutoff, at: 1)
                _ = try statement.step()
                return statement.optionalInt64(at: 0)
            }
        }.min()
    }

    /// Inside prune's transaction: the path probes of rounds before `bound`
    /// (path_probe rows, and path blocks of hours that end by it; when the
    /// bound is the cutoff, its own hour's blocks are cut at it). Returns
    /// how many went.
    func prunePaths(before bound: Nanoseconds, cutoff: Nanoseconds) throws -> Int64 {
        guard try userVersion() >= 7 else { return 0 }
        try run("DELETE FROM path_probe WHERE round_ns < ?1") { $0.bind(bound, at: 1) }
        var deleted = Int64(sqlite3_changes(sqliteConnection))
        guard try userVersion() >= 8 else { return deleted }
        deleted += try withStatement("SELECT coalesce(sum(count), 0) FROM path_block WHERE start_ns <= ?1 - \(Database.blockSpanNs)") { statement in
            statement.bind(bound, at: 1)
            _ = try statement.step()
            return statement.int64(at: 0)
        }
        try run("DELETE FROM path_block WHERE start_ns <= ?1 - \(Database.blockSpanNs)") { $0.bind(bound, at: 1) }
        guard bound == cutoff else { return deleted }
        let hour = Database.blockStart(of: cutoff)
        let targets = try fetchAll("SELECT target_id FROM path_block WHERE start_ns = ?1 AND first_round_ns < ?2",
                                   bind: { $0.bind(hour, at: 1); $0.bind(cutoff, at: 2) }) { $0.int64(at: 0) }
        for target in targets {
            let all = try pathBlockProbes(target: target, start: hour)
            let kept = all.filter { $0.roundNs >= cutoff }
            deleted += Int64(all.count - kept.count)
            try storePathBlock(kept, target: target, start: hour)
        }
        return deleted
    }
}
