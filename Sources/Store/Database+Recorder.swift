// The recorder's writes. One writer per database (RecorderLock); every call
// is one BEGIN IMMEDIATE transaction, so a crash leaves whole batches only.

internal import CSQLite

extension Database {
    /// Finds the target by name, inserting it or updating its host.
    public func target(name: String, host: String) throws -> TargetRecord {
        let id = try inTransaction {
            try withStatement("""
                INSERT INTO target(name, host) VALUES (?1, ?2)
                ON CONFLICT(name) DO UPDATE SET host = excluded.host
                RETURNING id
                """) { statement in
                statement.bind(name, at: 1)
                statement.bind(host, at: 2)
                guard try statement.step() else {
                    throw StoreError(resultCode: .error, message: "upsert of target \(name) returned no id", sql: statement.sql)
                }
                let id = statement.int64(at: 0)
                // RETURNING rows come before the statement is done: finish it.
                while try statement.step() {}
                return id
            }
        }
        return TargetRecord(id: id, name: name, host: host)
    }

    /// Inserts a running session (heartbeat = start) and the targets it
    /// probes; the records' sessionID is ignored. Returns the session's id.
    public func beginSession(_ session: NewSession, targets: [SessionTargetRecord]) throws -> Int64 {
        try inTransaction {
            try run("""
                INSERT INTO session(run_id, pid, hostname, version, socket_kind, interval_ns,
                                    payload_bytes, started_ns, heartbeat_ns, stopped_ns, foreign_packets)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, NULL, 0)
                """) { statement in
                statement.bind(Int64(bitPattern: session.runID), at: 1)
                statement.bind(Int64(session.pid), at: 2)
                statement.bind(session.hostname, at: 3)
                statement.bind(session.version, at: 4)
                statement.bind(session.socketKind, at: 5)
                statement.bind(session.intervalNs, at: 6)
                statement.bind(Int64(session.payloadBytes), at: 7)
                statement.bind(session.startedNs, at: 8)
            }
            let id = sqlite3_last_insert_rowid(sqliteConnection)
            try insertAll(targets, """
                INSERT INTO session_target(session_id, target_id, offset_ns, source, interface, tos)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                """) { statement, target in
                statement.bind(id, at: 1)
                statement.bind(target.targetID, at: 2)
                statement.bind(target.offsetNs, at: 3)
                statement.bind(target.source, at: 4)
                statement.bind(target.interface, at: 5)
                statement.bind(target.tos.map(Int64.init), at: 6)
            }
            return id
        }
    }

    /// Commits one batch in one transaction: probes in the given order,
    /// replies, ICMP errors, new addresses (a known (target, since) is kept),
    /// gaps (a gap with the same start replaces the old one: it grew), the
    /// foreign packet count and the heartbeat. A batch's replies and errors
    /// of its own moved probes (insertProbes) go to the moved probes; a
    /// writer that must also place those of earlier batches keeps the moves
    /// with `write(_:session:moves:nowNs:)`.
    public func write(_ batch: WriteBatch, session: Int64) throws {
        var moves = StampMoves(windowNs: 0)
        try write(batch, session: session, moves: &moves, nowNs: 0)
    }

    /// `write(_:session:)`, with the probes moved in this and earlier batches
    /// (`moves`, updated only when the batch commits, its entries older than
    /// `nowNs - moves.windowNs` forgotten): a reply or ICMP error carries the
    /// stamp of its probe's payload, the original one, so without the move it
    /// would become one more reply of the older probe that holds that key.
    /// `nowNs` is any clock that does not step (the recorder's monotonic one).
    public func write(_ batch: WriteBatch, session: Int64, moves: inout StampMoves, nowNs: Int64) throws {
        var updated = moves
        try inTransaction {
            for move in try insertProbes(batch.probes) { updated.record(move, atNs: nowNs) }
            try insertAll(batch.replies, "INSERT INTO reply(sent_ns, target_id, rtt_ns) VALUES (?1, ?2, ?3)") { statement, reply in
                statement.bind(updated.storedNs(reply.sentNs, target: reply.targetID), at: 1)
                statement.bind(reply.targetID, at: 2)
                statement.bind(reply.rttNs, at: 3)
            }
            try insertAll(batch.icmpErrors, """
                INSERT INTO icmp_error(sent_ns, target_id, rtt_ns, family, type, code, source)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                """) { statement, error in
                statement.bind(updated.storedNs(error.sentNs, target: error.targetID), at: 1)
                statement.bind(error.targetID, at: 2)
                statement.bind(error.rttNs, at: 3)
                statement.bind(Int64(error.family), at: 4)
                statement.bind(Int64(error.type), at: 5)
                statement.bind(Int64(error.code), at: 6)
                statement.bind(error.source, at: 7)
            }
            try insertAll(batch.addresses, "INSERT OR IGNORE INTO address(target_id, since_ns, address) VALUES (?1, ?2, ?3)") { statement, address in
                statement.bind(address.targetID, at: 1)
                statement.bind(address.sinceNs, at: 2)
                statement.bind(address.address, at: 3)
            }
            try insertPaths(batch.pathProbes, batch.pathHops)
            try applyTargetChanges(batch.targetChanges, session: session)
            try insertAll(batch.gaps, "INSERT OR REPLACE INTO gap(session_id, start_ns, end_ns, reason) VALUES (?1, ?2, ?3, ?4)") { statement, gap in
                statement.bind(gap.sessionID, at: 1)
                statement.bind(gap.startNs, at: 2)
                statement.bind(gap.endNs, at: 3)
                statement.bind(gap.reason.rawValue, at: 4)
            }
            try run("UPDATE session SET foreign_packets = foreign_packets + ?1, heartbeat_ns = ?2 WHERE id = ?3") { statement in
                statement.bind(batch.foreignPackets, at: 1)
                statement.bind(batch.heartbeatNs, at: 2)
                statement.bind(session, at: 3)
            }
            try requireChangedRow(session: session)
        }
        updated.expire(nowNs: nowNs)
        moves = updated
    }

    /// A batch's path rounds and hop addresses. OR IGNORE: a round is keyed
    /// by its first send's wall time, and only a wall clock stepped back onto
    /// that very nanosecond could repeat a key; refusing the whole batch (at
    /// every retry) for it would lose the target's probes too.
    private func insertPaths(_ probes: [PathProbeRecord], _ hops: [PathHopRecord]) throws {
        try insertAll(probes, """
            INSERT OR IGNORE INTO path_probe(round_ns, target_id, ttl, to_target, sent_ns, send_error, rtt_ns, source, type, code)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
            """) { statement, probe in
            statement.bind(probe.roundNs, at: 1)
            statement.bind(probe.targetID, at: 2)
            statement.bind(Int64(probe.ttl), at: 3)
            statement.bind(probe.toTarget ? 1 : 0, at: 4)
            statement.bind(probe.sentNs, at: 5)
            statement.bind(probe.sendError.map(Int64.init), at: 6)
            statement.bind(probe.rttNs, at: 7)
            statement.bind(probe.from, at: 8)
            statement.bind(probe.icmpType.map(Int64.init), at: 9)
            statement.bind(probe.icmpCode.map(Int64.init), at: 10)
        }
        try insertAll(hops, "INSERT OR IGNORE INTO path_hop(target_id, ttl, since_ns, address) VALUES (?1, ?2, ?3, ?4)") { statement, hop in
            statement.bind(hop.targetID, at: 1)
            statement.bind(Int64(hop.ttl), at: 2)
            statement.bind(hop.sinceNs, at: 3)
            statement.bind(hop.address, at: 4)
        }
    }

    /// A reloaded targets file's changes, in order. A target probed since
    /// the session began has no span until it is removed; then its one
    /// span runs from the session's start to the removal.
    private func applyTargetChanges(_ changes: [SessionTargetChange], session: Int64) throws {
        for change in changes {
            switch change {
            case let .added(record, startNs):
                // A target added again keeps its row and offset; its probe
                // options are the latest line's (one row per session and
                // target: a line whose options changed is best given a new label).
                try run("""
                    INSERT INTO session_target(session_id, target_id, offset_ns, source, interface, tos)
                    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                    ON CONFLICT(session_id, target_id) DO UPDATE
                    SET source = excluded.source, interface = excluded.interface, tos = excluded.tos
                    """) { statement in
                    statement.bind(session, at: 1)
                    statement.bind(record.targetID, at: 2)
                    statement.bind(record.offsetNs, at: 3)
                    statement.bind(record.source, at: 4)
                    statement.bind(record.interface, at: 5)
                    statement.bind(record.tos.map(Int64.init), at: 6)
                }
                try run("INSERT OR IGNORE INTO session_target_span(session_id, target_id, start_ns, end_ns) VALUES (?1, ?2, ?3, NULL)") { statement in
                    statement.bind(session, at: 1)
                    statement.bind(record.targetID, at: 2)
                    statement.bind(startNs, at: 3)
                }
            case let .removed(targetID, endNs):
                try run("""
                    UPDATE session_target_span SET end_ns = ?3
                    WHERE session_id = ?1 AND target_id = ?2 AND end_ns IS NULL
                    """) { statement in
                    statement.bind(session, at: 1)
                    statement.bind(targetID, at: 2)
                    statement.bind(endNs, at: 3)
                }
                try run("""
                    INSERT INTO session_target_span(session_id, target_id, start_ns, end_ns)
                    SELECT id, ?2, started_ns, ?3 FROM session WHERE id = ?1
                    AND NOT EXISTS (SELECT 1 FROM session_target_span WHERE session_id = ?1 AND target_id = ?2)
                    """) { statement in
                    statement.bind(session, at: 1)
                    statement.bind(targetID, at: 2)
                    statement.bind(endNs, at: 3)
                }
            }
        }
    }

    /// The probes, each under a key of its own: a wall clock stepped back can
    /// stamp a probe with the exact sent_ns of an older one of its target
    /// (about 4 in a million probes per target and one-hour step), and the
    /// primary key would refuse the whole batch, again at every retry. Such
    /// a probe is stored 1 ns later (and later again until the key is free),
    /// its first reply in its row with it; one nanosecond changes no figure
    /// a report shows. Returns the probes so moved.
    private func insertProbes(_ probes: [ProbeRecord]) throws -> [StampMove] {
        guard !probes.isEmpty else { return [] }
        var moves: [StampMove] = []
        // Keys a block holds are taken too (a row under one would read as a
        // copy of the block's probe: Database+Blocks.swift). Only a batch
        // held for over 90 minutes, or a step back that far, reaches an hour
        // with blocks; the hour being recorded never has one.
        let inBlocks = try blockKeys(of: probes)
        try withStatement("""
            INSERT INTO probe(sent_ns, target_id, rtt_ns, send_error) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT(sent_ns, target_id) DO NOTHING
            """) { statement in
            for probe in probes {
                var sent = probe.sentNs
                repeat {
                    while inBlocks.contains(Key(targetID: probe.targetID, sentNs: sent)) { sent &+= 1 }
                    statement.reset()
                    statement.bind(sent, at: 1)
                    statement.bind(probe.targetID, at: 2)
                    statement.bind(probe.rttNs, at: 3)
                    statement.bind(probe.sendError.map(Int64.init), at: 4)
                    try statement.run()
                    sent &+= 1
                } while sqlite3_changes(sqliteConnection) == 0
                if sent &- 1 != probe.sentNs {
                    moves.append(StampMove(targetID: probe.targetID, sentNs: probe.sentNs, storedNs: sent &- 1))
                }
            }
        }
        return moves
    }

    private typealias Key = StampMoves.Key

    /// The keys of the blocks of the hours and targets `probes` fall in.
    private func blockKeys(of probes: [ProbeRecord]) throws -> Set<Key> {
        guard try userVersion() >= 2 else { return [] }
        var keys: Set<Key> = []
        var hours: [Nanoseconds: Set<Int64>] = [:]
        for probe in probes where Database.compactableSent.contains(probe.sentNs) {
            hours[Database.blockStart(of: probe.sentNs), default: []].insert(probe.targetID)
        }
        for (hour, targets) in hours {
            let blocked = try fetchAll("SELECT target_id FROM block WHERE start_ns = ?1",
                                       bind: { $0.bind(hour, at: 1) }) { $0.int64(at: 0) }
            for target in blocked where targets.contains(target) {
                for probe in try blockProbes(target: target, start: hour) ?? [] {
                    keys.insert(Key(targetID: target, sentNs: probe.sentNs))
                }
            }
        }
        return keys
    }

    /// Runs one prepared statement per row, `bind` setting its parameters;
    /// no rows, no statement.
    private func insertAll<Row>(_ rows: [Row], _ sql: String, bind: (Statement, Row) -> Void) throws {
        guard !rows.isEmpty else { return }
        try withStatement(sql) { statement in
            for row in rows {
                statement.reset()
                bind(statement, row)
                try statement.run()
            }
        }
    }

    /// Marks a clean stop: stopped_ns, and the heartbeat with it.
    public func endSession(_ session: Int64, stoppedNs: Nanoseconds) throws {
        try inTransaction {
            try run("UPDATE session SET stopped_ns = ?1, heartbeat_ns = ?1 WHERE id = ?2") { statement in
                statement.bind(stoppedNs, at: 1)
                statement.bind(session, at: 2)
            }
            try requireChangedRow(session: session)
        }
    }

    /// A batch for a session that does not exist would be rows no report can
    /// place: fail (and roll back) instead.
    private func requireChangedRow(session: Int64) throws {
        if sqlite3_changes(sqliteConnection) != 1 {
            throw StoreError(resultCode: .notFound, message: "no session with id \(session)", sql: nil)
        }
    }
}

/// A probe stored later than its stamp because its (sent_ns, target) was
/// taken (Database.insertProbes).
public struct StampMove: Sendable, Hashable {
    public var targetID: Int64
    /// The stamp the probe carries in its payload, and its replies with it.
    public var sentNs: Nanoseconds
    /// Where the probe is stored.
    public var storedNs: Nanoseconds

    public init(targetID: Int64, sentNs: Nanoseconds, storedNs: Nanoseconds) {
        self.targetID = targetID; self.sentNs = sentNs; self.storedNs = storedNs
    }
}

/// The moves of the last match window, so that replies and ICMP errors that
/// come in later batches find their moved probe. Small: a move needs a
/// backward clock step onto the exact nanosecond of an older probe.
public struct StampMoves: Sendable {
    struct Key: Hashable { var targetID: Int64; var sentNs: Nanoseconds }

    /// How long a move is kept: the recorder's match window (a reply later
    /// than that is not matched to its probe at all).
    public let windowNs: Int64
    private var moves: [Key: (storedNs: Nanoseconds, atNs: Int64)] = [:]

    public init(windowNs: Int64) { self.windowNs = windowNs }

    public var count: Int { moves.count }

    /// A probe moved again later (a second step onto the same stamp) wins:
    /// later replies are the newer probe's.
    mutating func record(_ move: StampMove, atNs: Int64) {
        moves[Key(targetID: move.targetID, sentNs: move.sentNs)] = (move.storedNs, atNs)
    }

    /// Where the probe that carries `sentNs` is stored.
    func storedNs(_ sentNs: Nanoseconds, target: Int64) -> Nanoseconds {
        if moves.isEmpty { return sentNs }
        return moves[Key(targetID: target, sentNs: sentNs)]?.storedNs ?? sentNs
    }

    /// Forgets the moves recorded more than `windowNs` before `nowNs`.
    mutating func expire(nowNs: Int64) {
        let cutoff = nowNs.subtractingReportingOverflow(windowNs)
        guard !moves.isEmpty, !cutoff.overflow else { return }
        moves = moves.filter { $0.value.atNs >= cutoff.partialValue }
    }
}
