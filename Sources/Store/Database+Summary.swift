// Building and reading per-hour summaries (HourSummary.swift says what one
// holds). The builder reads raw data only through forEachProbe, replies and
// icmpErrors, so it keeps working whatever those read from.

internal import CSQLite

extension Database {
    /// Summarizes, in time order, complete UTC hours that end at or before
    /// `cutoff` and that follow the latest summarized hour: at most `maxHours`
    /// hours holding probes, each hour (all its targets) in one transaction.
    /// Returns how many hours it summarized; 0 means it is up to date.
    ///
    /// The recorder calls it with cutoff = now - 30 min: replies are matched
    /// up to 10 minutes after their probe, so an hour's raw rows are final by
    /// then. A history that is edited later (an old hour receiving rows) is
    /// not re-summarized.
    @discardableResult
    public func summarizeHours(endingBy cutoff: Nanoseconds, maxHours: Int) throws -> Int {
        let allTargets = try targets()
        var next: Nanoseconds? = nil
        for target in allTargets {
            let latest = try withStatement("SELECT max(hour_ns) FROM summary WHERE target_id = ?1") { statement in
                statement.bind(target.id, at: 1)
                _ = try statement.step()
                return statement.optionalInt64(at: 0)
            }
            if let latest { next = max(next ?? latest + summaryHourNs, latest + summaryHourNs) }
        }
        var done = 0
        while done < maxHours {
            // The next hour that holds a probe, in a plain row or in a block
            // (compaction may have got there first): skips the time between
            // sessions at once. `next` is a whole hour, like block.start_ns.
            let inRows = try withStatement("SELECT sent_ns FROM probe WHERE sent_ns >= ?1 ORDER BY sent_ns LIMIT 1") { statement in
                statement.bind(next ?? Int64.min, at: 1)
                return try statement.step() ? statement.int64(at: 0) : nil
            }
            let inBlocks = try withStatement("SELECT start_ns FROM block WHERE start_ns >= ?1 ORDER BY start_ns LIMIT 1") { statement in
                statement.bind(next ?? Int64.min, at: 1)
                return try statement.step() ? statement.int64(at: 0) : nil
            }
            guard let firstSent = [inRows, inBlocks].compactMap({ $0 }).min() else { break }
            let hour = floorDiv(firstSent, summaryHourNs) * summaryHourNs
            guard hour + summaryHourNs <= cutoff else { break }
            try buildSummaries(hour: hour)
            done += 1
            next = hour + summaryHourNs
        }
        return done
    }

    private func buildSummaries(hour: Nanoseconds) throws {
        let fresh = try summariesFromRaw(hour: hour)
        try writeSummaries(fresh, paths: try pathSummariesFromRaw(hour: hour, targets: fresh.map(\.targetID)))
    }

    /// The hours with a summary in an older encoding than this build writes,
    /// oldest first (one scan of the table). Encoding 2 lacks the per-bucket
    /// response counts, so `/metrics` reads such hours raw, and at serve's
    /// start that is almost every hour of a long history.
    /// Hours summarized before path summaries (schema 9) count too: they
    /// have summary rows and no path_summary rows (the builder writes one
    /// for every target with a summary, empty without rounds).
    public func outdatedSummaryHours() throws -> [Nanoseconds] {
        guard try userVersion() >= 3 else { return [] }
        let withoutPaths = try userVersion() >= 9 ? """
             UNION SELECT hour_ns FROM summary AS s WHERE NOT EXISTS (
                SELECT 1 FROM path_summary AS p WHERE p.target_id = s.target_id AND p.hour_ns = s.hour_ns)
            """ : ""
        return try fetchAll("SELECT hour_ns FROM summary WHERE substr(data, 1, 1) <> ?1\(withoutPaths) ORDER BY hour_ns",
                            bind: { $0.bind([HourSummary.encodingVersion], at: 1) }) { row in row.int64(at: 0) }
    }

    /// Summarizes an hour again in the current encoding, all its targets in
    /// one transaction, if its raw probes are all still stored: each target's
    /// new summary must count the probes its old one counted, so an hour
    /// whose probes were pruned keeps its old summary (the only record of
    /// it). Returns whether it replaced the hour's summaries.
    /// An hour without path summaries gets them, in the same transaction,
    /// from the path probes still stored (prune deletes them with the
    /// hour's probes: then they are empty, which is all that is left).
    @discardableResult
    public func resummarize(hour: Nanoseconds) throws -> Bool {
        var fresh = try summariesFromRaw(hour: hour)
        var summarized: [Int64] = []
        var complete = true
        for target in try targets() {
            let old = try summarizedCounts(from: hour, to: hour + 1, target: target.id)[hour]
            if old != nil { summarized.append(target.id) }
            if old != fresh.first(where: { $0.targetID == target.id })?.sent { complete = false }
        }
        if !complete { fresh = [] }
        let hasPaths = try !pathSummaries(from: hour, to: hour + 1, targets: nil).isEmpty
        try writeSummaries(fresh, paths: hasPaths ? [] : try pathSummariesFromRaw(hour: hour, targets: summarized))
        return complete
    }

    /// The path summaries of `hour` for `targets` (those with an hour
    /// summary) and any other target with rounds in it: an empty one for a
    /// target without rounds says the hour's path was summarized.
    private func pathSummariesFromRaw(hour: Nanoseconds, targets: [Int64]) throws -> [PathSummary] {
        guard try userVersion() >= 9 else { return [] }
        let end = hour + summaryHourNs
        var probes: [Int64: [PathProbeRecord]] = [:]
        for probe in try pathProbes(targets: nil, from: hour, to: end) { probes[probe.targetID, default: []].append(probe) }
        // A round's probes leave within milliseconds of its round time,
        // which may be the hour's last.
        let sessions = try self.sessions(overlapping: hour, end + 60_000_000_000)
        let sessionTargets = try self.sessionTargets(sessions: sessions.map(\.id))
        return Set(targets).union(probes.keys).sorted().map { target in
            summarizePathHour(targetID: target, hourNs: hour, probes: probes[target] ?? [],
                              sessions: sessionsJudging(target, sessions: sessions, sessionTargets: sessionTargets))
        }
    }

    /// Every target's summary of `hour`, from its raw probes (rows or blocks).
    private func summariesFromRaw(hour: Nanoseconds) throws -> [HourSummary] {
        let end = hour + summaryHourNs
        let sessions = try self.sessions(overlapping: hour, end)
        let sessionTargets = try self.sessionTargets(sessions: sessions.map(\.id))
        var replies: [Int64: [ReplyRecord]] = [:]
        for reply in try self.replies(from: hour, to: end, targets: nil) { replies[reply.targetID, default: []].append(reply) }
        var errors: [Int64: [ICMPErrorRecord]] = [:]
        for error in try icmpErrors(from: hour, to: end, targets: nil) { errors[error.targetID, default: []].append(error) }
        // The probes stream past once, each to its target's summarizer: the
        // recorder's writer runs this every hour, and an hour of a busy
        // recorder is millions of probes.
        var summarizers: [HourSummarizer] = []
        var index: [Int64: Int] = [:]
        try forEachProbe(from: hour, to: end, targets: nil) { probe in
            let target = probe.targetID
            guard let i = index[target] else {
                let own = sessionsJudging(target, sessions: sessions, sessionTargets: sessionTargets)
                var summarizer = HourSummarizer(targetID: target, hourNs: hour, replies: replies[target] ?? [],
                                                icmpErrors: errors[target] ?? [], sessions: own)
                summarizer.add(probe)
                index[target] = summarizers.count
                summarizers.append(summarizer)
                return
            }
            summarizers[i].add(probe)
        }
        return index.sorted { $0.key < $1.key }.map { summarizers[$0.value].finish() }
    }

    /// Deletes every summary (the builder then starts again from the first
    /// probe still stored): after a change of the encoding, by pingem-bench.
    public func deleteAllSummaries() throws {
        try inTransaction {
            try run("DELETE FROM summary")
            if try userVersion() >= 9 { try run("DELETE FROM path_summary") }
        }
    }

    /// Stores summaries and path summaries (replacing any of the same target
    /// and hour) in one transaction.
    public func writeSummaries(_ summaries: [HourSummary], paths: [PathSummary] = []) throws {
        guard !summaries.isEmpty || !paths.isEmpty else { return }
        try inTransaction {
            if !paths.isEmpty {
                try withStatement("INSERT OR REPLACE INTO path_summary(target_id, hour_ns, rounds, data) VALUES (?1, ?2, ?3, ?4)") { statement in
                    for path in paths {
                        statement.reset()
                        statement.bind(path.targetID, at: 1)
                        statement.bind(path.hourNs, at: 2)
                        statement.bind(Int64(path.tally.rounds), at: 3)
                        statement.bind(path.encoded(), at: 4)
                        try statement.run()
                    }
                }
            }
            try withStatement("INSERT OR REPLACE INTO summary(target_id, hour_ns, sent, data) VALUES (?1, ?2, ?3, ?4)") { statement in
                for summary in summaries {
                    statement.reset()
                    statement.bind(summary.targetID, at: 1)
                    statement.bind(summary.hourNs, at: 2)
                    statement.bind(Int64(summary.sent), at: 3)
                    statement.bind(summary.encoded(), at: 4)
                    try statement.run()
                }
            }
        }
    }

    /// The target's summaries of hours starting in [from, to), by hour; none
    /// in a database of schema 1 or 2 opened read-only (not migrated: no table).
    public func summaries(from: Nanoseconds, to: Nanoseconds, target: Int64) throws -> [HourSummary] {
        guard try userVersion() >= 3 else { return [] }
        return try fetchAll("""
            SELECT hour_ns, data FROM summary
            WHERE target_id = ?1 AND hour_ns >= ?2 AND hour_ns < ?3 ORDER BY hour_ns
            """, bind: { statement in
                statement.bind(target, at: 1)
                statement.bind(from, at: 2)
                statement.bind(to, at: 3)
            }) { row in
            try HourSummary(targetID: target, hourNs: row.int64(at: 0), encoded: row.blob(at: 1))
        }
    }

    /// The path summaries of hours starting in [from, to), by target and
    /// hour, of `targets` (nil: all), still encoded; none before schema 9 (a
    /// database opened read-only is not migrated).
    public func pathSummaryRows(from: Nanoseconds, to: Nanoseconds, targets: Set<Int64>?) throws -> [PathSummaryRow] {
        guard from < to, try userVersion() >= 9 else { return [] }
        let rows = try fetchAll("""
            SELECT target_id, hour_ns, data FROM path_summary WHERE hour_ns >= ?1 AND hour_ns < ?2 ORDER BY target_id, hour_ns
            """, bind: { statement in
                statement.bind(from, at: 1)
                statement.bind(to, at: 2)
            }) { row in
            PathSummaryRow(targetID: row.int64(at: 0), hourNs: row.int64(at: 1), data: row.blob(at: 2))
        }
        return targets.map { ids in rows.filter { ids.contains($0.targetID) } } ?? rows
    }

    /// pathSummaryRows, decoded.
    public func pathSummaries(from: Nanoseconds, to: Nanoseconds, targets: Set<Int64>?) throws -> [PathSummary] {
        try pathSummaryRows(from: from, to: to, targets: targets).map { try $0.decoded() }
    }

    /// How many probes each summarized hour in [from, to) of the target held
    /// (hour -> sent), without decoding: to tell pruned raw data from none.
    public func summarizedCounts(from: Nanoseconds, to: Nanoseconds, target: Int64) throws -> [Nanoseconds: Int] {
        guard try userVersion() >= 3 else { return [:] }
        var counts: [Nanoseconds: Int] = [:]
        try withStatement("""
            SELECT hour_ns, sent FROM summary WHERE target_id = ?1 AND hour_ns >= ?2 AND hour_ns < ?3
            """) { statement in
            statement.bind(target, at: 1)
            statement.bind(from, at: 2)
            statement.bind(to, at: 3)
            while try statement.step() { counts[statement.int64(at: 0)] = Int(statement.int64(at: 1)) }
        }
        return counts
    }
}

extension Database {
    /// Bytes the summary table takes in the file (its b-tree pages).
    public func summaryTableBytes() throws -> Int64 {
        do {
            return try withStatement("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = 'summary'") { statement in
                _ = try statement.step()
                return statement.int64(at: 0)
            }
        } catch {
            // SQLite built without the dbstat table: the payload, without page overhead.
            return try withStatement("SELECT coalesce(sum(length(data)) + 24 * count(*), 0) FROM summary") { statement in
                _ = try statement.step()
                return statement.int64(at: 0)
            }
        }
    }
}

private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
