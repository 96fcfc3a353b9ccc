// The readers. Ranges are half-open [from, to) in nanoseconds since the
// epoch. Each call reads one consistent WAL snapshot and releases it when it
// returns, so a reader never holds back the recorder's checkpoints for long.

internal import CSQLite
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension Database {
    public func targets() throws -> [TargetRecord] {
        try fetchAll("SELECT id, name, host FROM target ORDER BY id") { row in
            TargetRecord(id: row.int64(at: 0), name: row.string(at: 1), host: row.string(at: 2))
        }
    }

    /// Sessions whose [started, end) overlaps [from, to), end being the clean
    /// stop, else the last heartbeat; by start time.
    public func sessions(overlapping from: Nanoseconds, _ to: Nanoseconds) throws -> [SessionRecord] {
        try fetchAll("""
            SELECT \(Database.sessionColumns) FROM session
            WHERE started_ns < ?2 AND coalesce(stopped_ns, heartbeat_ns) > ?1
            ORDER BY started_ns, id
            """, bind: { statement in
                statement.bind(from, at: 1)
                statement.bind(to, at: 2)
            }, row: Database.session(from:))
    }

    /// session_target's probe option columns, as NULLs in a database of an
    /// older schema opened read-only (not migrated: no such columns).
    func probedAsColumns() throws -> String {
        try userVersion() >= 5 ? "source, interface, tos" : "NULL, NULL, NULL"
    }

    /// The targets of the given sessions, in the order of `sessions`, each
    /// session's by offset.
    public func sessionTargets(sessions: [Int64]) throws -> [SessionTargetRecord] {
        var records: [SessionTargetRecord] = []
        for session in sessions {
            var own = try fetchAll("""
                SELECT session_id, target_id, offset_ns, \(try probedAsColumns()) FROM session_target
                WHERE session_id = ?1 ORDER BY offset_ns, target_id
                """, bind: { $0.bind(session, at: 1) }) { row in
                SessionTargetRecord(sessionID: row.int64(at: 0), targetID: row.int64(at: 1), offsetNs: row.int64(at: 2),
                                    source: row.optionalString(at: 3), interface: row.optionalString(at: 4),
                                    tos: row.optionalInt64(at: 5).map(Int.init))
            }
            let spans = try userVersion() < 6 ? [] : try fetchAll("""
                SELECT target_id, start_ns, end_ns FROM session_target_span
                WHERE session_id = ?1 ORDER BY target_id, start_ns
                """, bind: { $0.bind(session, at: 1) }) { row in
                (row.int64(at: 0), TargetSpan(startNs: row.int64(at: 1), endNs: row.optionalInt64(at: 2)))
            }
            if !spans.isEmpty {
                let byTarget = Dictionary(grouping: spans, by: \.0)
                for i in own.indices { own[i].spans = byTarget[own[i].targetID]?.map(\.1) ?? [] }
            }
            records += own
        }
        return records
    }

    /// Gaps whose [start, end) overlaps [from, to), by start time.
    public func gaps(overlapping from: Nanoseconds, _ to: Nanoseconds) throws -> [GapRecord] {
        try fetchAll("""
            SELECT session_id, start_ns, end_ns, reason FROM gap
            WHERE start_ns < ?2 AND end_ns > ?1 ORDER BY start_ns, session_id
            """, bind: { statement in
                statement.bind(from, at: 1)
                statement.bind(to, at: 2)
            }) { row in
            let reasonText = row.string(at: 3)
            guard let reason = GapRecord.Reason(rawValue: reasonText) else {
                throw StoreError(resultCode: .corrupt, message: "unknown gap reason '\(reasonText)'", sql: nil)
            }
            return GapRecord(sessionID: row.int64(at: 0), startNs: row.int64(at: 1), endNs: row.int64(at: 2), reason: reason)
        }
    }

    /// The target's addresses, oldest first.
    public func addresses(target: Int64) throws -> [AddressRecord] {
        try fetchAll("SELECT target_id, since_ns, address FROM address WHERE target_id = ?1 ORDER BY since_ns",
                     bind: { $0.bind(target, at: 1) }) { row in
            AddressRecord(targetID: row.int64(at: 0), sinceNs: row.int64(at: 1), address: row.string(at: 2))
        }
    }

    /// Every hop's address history, in (target, ttl, since) order; targets
    /// nil = all.
    public func pathHops(targets: Set<Int64>?) throws -> [PathHopRecord] {
        guard try userVersion() >= 7 else { return [] }
        let rows = try fetchAll("SELECT target_id, ttl, since_ns, address FROM path_hop ORDER BY target_id, ttl, since_ns") { row in
            PathHopRecord(targetID: row.int64(at: 0), ttl: Int(row.int64(at: 1)), sinceNs: row.int64(at: 2), address: row.string(at: 3))
        }
        guard let targets else { return rows }
        return rows.filter { targets.contains($0.targetID) }
    }

    /// Probes with from <= sent_ns < to, in (sent_ns, target_id) order;
    /// targets nil = all. Probe rows and compacted blocks (Database+Blocks)
    /// merged, so callers never see where a probe is stored. Streams: one
    /// probe at a time (an hour of blocks decoded at a time), one snapshot.
    public func forEachProbe(from: Nanoseconds, to: Nanoseconds, targets: Set<Int64>?, _ body: (ProbeRecord) throws -> Void) throws {
        guard from < to else { return }
        // One SQL for every filter, so the statements are prepared once; the
        // filter is a Set lookup, cheaper than an IN list SQLite would parse.
        try inReadSnapshot { try mergedProbes(from: from, to: to, targets: targets, body) }
    }

    /// forEachProbe into an array. A long range is read in two halves at
    /// once, the earlier one on a second read-only connection on its own
    /// thread: stepping SQLite is half of a day's report and one core's
    /// work, the machine has two. Each half is one snapshot, as each of the
    /// reader calls is (the halves meet at a time long written).
    public func probes(from: Nanoseconds, to: Nanoseconds, targets: Set<Int64>?, reserve: Int = 0) throws -> [ProbeRecord] {
        let splitAbove: Nanoseconds = 3_600_000_000_000
        guard to - from > splitAbove, onlineProcessors() > 1 else {
            var probes: [ProbeRecord] = []
            probes.reserveCapacity(reserve)
            try forEachProbe(from: from, to: to, targets: targets) { probes.append($0) }
            return probes
        }
        let mid = from + (to - from) / 2
        let path = self.path
        let earlier = Mutex<Result<[ProbeRecord], Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let result = Result { () throws -> [ProbeRecord] in
                let helper = try Database(path: path, mode: .readOnly)
                var probes: [ProbeRecord] = []
                // Room for both halves: the later one is appended without a copy.
                probes.reserveCapacity(reserve + 16)
                try helper.forEachProbe(from: from, to: mid, targets: targets) { probes.append($0) }
                return probes
            }
            earlier.withLock { $0 = result }
            done.signal()
        }
        var later: [ProbeRecord] = []
        later.reserveCapacity(reserve / 2 + 16)
        let laterError = Result { try forEachProbe(from: mid, to: to, targets: targets) { later.append($0) } }
        done.wait()
        var probes = try earlier.withLock { $0! }.get()
        try laterError.get()
        probes += later
        return probes
    }

    /// Reply rows of probes sent in [from, to), by (sent_ns, target_id, rtt_ns).
    public func replies(from: Nanoseconds, to: Nanoseconds, targets: Set<Int64>?) throws -> [ReplyRecord] {
        try fetchAll("""
            SELECT sent_ns, target_id, rtt_ns FROM reply
            WHERE sent_ns >= ?1 AND sent_ns < ?2 ORDER BY sent_ns, target_id, rtt_ns
            """, bind: { statement in
                statement.bind(from, at: 1)
                statement.bind(to, at: 2)
            }) { row in
            ReplyRecord(sentNs: row.int64(at: 0), targetID: row.int64(at: 1), rttNs: row.int64(at: 2))
        }.filter { targets?.contains($0.targetID) ?? true }
    }

    /// ICMP errors about probes sent in [from, to), by (sent_ns, target_id, rtt_ns).
    public func icmpErrors(from: Nanoseconds, to: Nanoseconds, targets: Set<Int64>?) throws -> [ICMPErrorRecord] {
        try fetchAll("""
            SELECT sent_ns, target_id, rtt_ns, family, type, code, source FROM icmp_error
            WHERE sent_ns >= ?1 AND sent_ns < ?2 ORDER BY sent_ns, target_id, rtt_ns
            """, bind: { statement in
                statement.bind(from, at: 1)
                statement.bind(to, at: 2)
            }) { row in
            ICMPErrorRecord(
                sentNs: row.int64(at: 0), targetID: row.int64(at: 1), rttNs: row.int64(at: 2),
                family: Int(row.int64(at: 3)),
                type: UInt8(truncatingIfNeeded: row.int64(at: 4)),
                code: UInt8(truncatingIfNeeded: row.int64(at: 5)),
                source: row.string(at: 6))
        }.filter { targets?.contains($0.targetID) ?? true }
    }

    /// What `pingem status` shows.
    public func statusSummary() throws -> StoreStatus {
        // One read transaction, so the counts and the latest session agree.
        try run("BEGIN")
        defer { _ = sqlite3_exec(sqliteConnection, "COMMIT", nil, nil, nil) }
        let latest = try fetchAll(
            "SELECT \(Database.sessionColumns) FROM session ORDER BY started_ns DESC, id DESC LIMIT 1",
            row: Database.session(from:)).first
        var targetNames: [String] = []
        if let latest {
            targetNames = try fetchAll("""
                SELECT target.name FROM session_target JOIN target ON target.id = session_target.target_id
                WHERE session_target.session_id = ?1 ORDER BY session_target.offset_ns, target.name
                """, bind: { $0.bind(latest.id, at: 1) }) { $0.string(at: 0) }
        }
        let (rows, firstReplies, lastSent) = try withStatement("SELECT count(*), count(rtt_ns), max(sent_ns) FROM probe") { statement in
            _ = try statement.step()
            return (statement.int64(at: 0), statement.int64(at: 1), statement.optionalInt64(at: 2))
        }
        // Compacted probes count the same (their first replies are in `replied`).
        let (blockProbes, blockReplies, blockLast) = try withStatement(
            "SELECT coalesce(sum(count), 0), coalesce(sum(replied), 0), max(last_sent_ns) FROM \(try blockTable())"
        ) { statement in
            _ = try statement.step()
            return (statement.int64(at: 0), statement.int64(at: 1), statement.optionalInt64(at: 2))
        }
        let copies = try copiedRows()
        let probes = rows + blockProbes - copies.probes
        let lastProbe = [lastSent, blockLast].compactMap { $0 }.max()
        let replyRows = try withStatement("SELECT count(*) FROM reply") { statement in
            _ = try statement.step()
            return statement.int64(at: 0)
        }
        let pageCount = try withStatement("PRAGMA page_count") { statement in
            _ = try statement.step()
            return statement.int64(at: 0)
        }
        let pageSize = try withStatement("PRAGMA page_size") { statement in
            _ = try statement.step()
            return statement.int64(at: 0)
        }
        return StoreStatus(
            latestSession: latest, latestSessionTargets: targetNames,
            probeCount: probes, replyCount: firstReplies + blockReplies - copies.withRTT + replyRows, lastProbeSentNs: lastProbe,
            fileBytes: Database.fileSize(path) + Database.fileSize(path + "-wal"),
            pageCount: pageCount, pageSize: pageSize)
    }

    static func fileSize(_ path: String) -> Int64 {
        Int64((try? System.fileStatus(path))??.st_size ?? 0)
    }

    static let sessionColumns = """
        id, run_id, pid, hostname, version, socket_kind, interval_ns, payload_bytes, \
        started_ns, heartbeat_ns, stopped_ns, foreign_packets
        """

    static func session(from row: Statement) -> SessionRecord {
        SessionRecord(
            id: row.int64(at: 0),
            runID: UInt64(bitPattern: row.int64(at: 1)),
            pid: Int32(truncatingIfNeeded: row.int64(at: 2)),
            hostname: row.string(at: 3), version: row.string(at: 4), socketKind: row.string(at: 5),
            intervalNs: row.int64(at: 6), payloadBytes: Int(row.int64(at: 7)),
            startedNs: row.int64(at: 8), heartbeatNs: row.int64(at: 9), stoppedNs: row.optionalInt64(at: 10),
            foreignPackets: row.int64(at: 11))
    }
}

/// What `pingem status` shows about a database.
public struct StoreStatus: Sendable, Hashable {
    /// The session that started last, running or not.
    public var latestSession: SessionRecord?
    /// Names of its targets, in slot order.
    public var latestSessionTargets: [String]
    public var probeCount: Int64
    /// Probes with a first reply in their row, plus reply rows (late and duplicate).
    public var replyCount: Int64
    public var lastProbeSentNs: Nanoseconds?
    /// Main file plus its -wal file, as on disk.
    public var fileBytes: Int64
    public var pageCount: Int64
    public var pageSize: Int64

    public init(latestSession: SessionRecord?, latestSessionTargets: [String], probeCount: Int64, replyCount: Int64,
                lastProbeSentNs: Nanoseconds?, fileBytes: Int64, pageCount: Int64, pageSize: Int64) {
        self.latestSession = latestSession; self.latestSessionTargets = latestSessionTargets
        self.probeCount = probeCount; self.replyCount = replyCount; self.lastProbeSentNs = lastProbeSentNs
        self.fileBytes = fileBytes; self.pageCount = pageCount; self.pageSize = pageSize
    }
}

/// Online processors (sysconf), so a one-core machine reads in one piece.
func onlineProcessors() -> Int {
    Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}
