// Path blocks in the store (schema 8): compaction moves finished target-hours
// of path rounds into blocks without changing a single answer of pathProbes,
// with rows still arriving, stopped at any phase, and prune deletes them by
// the same cutoff as the rows.
import Testing
import TestSupport
@testable import Store

@Suite struct PathBlockStoreTests {
    let folder = TemporaryFolder()
    static let hour: Int64 = 3_600_000_000_000
    static let t0: Int64 = 1_764_000_000 * 1_000_000_000 / hour * hour

    /// Three hours of rounds of two targets, the last hour still "now".
    static func history(_ targets: [Int64]) -> [PathProbeRecord] {
        targets.enumerated().flatMap { i, target in
            (0..<3).flatMap { h in
                PathBlockCodecTests.realisticHour(seed: UInt64(10 * i + h), target: target, start: t0 + Int64(h) * hour)
            }
        }
    }

    /// Writes `probes` in batches of about a minute, as the recorder does.
    static func write(_ probes: [PathProbeRecord], into db: Database, session: Int64) throws {
        let byMinute = Dictionary(grouping: probes) { $0.roundNs / 60_000_000_000 }
        for minute in byMinute.keys.sorted() {
            var batch = WriteBatch()
            batch.pathProbes = byMinute[minute]!
            batch.heartbeatNs = minute * 60_000_000_000
            try db.write(batch, session: session)
        }
    }

    func filled(_ name: String) throws -> (Database, [Int64], Int64, [PathProbeRecord]) {
        let db = try Database(path: folder.file(name), mode: .readWrite)
        let targets = [try db.target(name: "a", host: "a").id, try db.target(name: "b", host: "b").id]
        let session = try db.beginSession(sampleSession, targets: [])
        let all = Self.history(targets)
        try Self.write(all, into: db, session: session)
        return (db, targets, session, all)
    }

    /// Every window shape a view asks for: all, one target, inside an hour,
    /// across an hour's edge.
    static func answers(_ db: Database, _ targets: [Int64]) throws -> [[PathProbeRecord]] {
        let windows: [(Int64, Int64)] = [(.min, .max), (t0 + hour / 2, t0 + 3 * hour / 2), (t0 + 7, t0 + 8 * 60_000_000_000),
                                         (t0 + hour, t0 + 2 * hour), (t0 + 2 * hour - 1, .max)]
        var answers: [[PathProbeRecord]] = []
        for (from, to) in windows {
            answers.append(try db.pathProbes(targets: nil, from: from, to: to))
            answers.append(try db.pathProbes(targets: [targets[1]], from: from, to: to))
        }
        return answers
    }

    @Test func compactionChangesNoAnswerAndLeavesTheCurrentHourInRows() throws {
        let (db, targets, session, all) = try filled("c.db")
        let before = try Self.answers(db, targets)
        #expect(before[0] == all.sorted { ($0.targetID, $0.roundNs, $0.ttl) < ($1.targetID, $1.roundNs, $1.ttl) })
        var transactions = 0
        db.beforeWriteTransaction = { transactions += 1 }
        // Now is 30 minutes into the third hour: two hours are finished,
        // compacted an hour (every target) per upkeep step, as probes are.
        #expect(try db.compact(hoursEndingBefore: Self.t0 + 2 * Self.hour + Self.hour / 2, limit: 1) == 2)
        #expect(try db.compact(hoursEndingBefore: Self.t0 + 2 * Self.hour + Self.hour / 2, limit: 1) == 2)
        db.beforeWriteTransaction = nil
        #expect(transactions == 4, "one transaction per target-hour")
        let raw = RawSQLite(folder.file("c.db"))
        #expect(raw.value("SELECT count(*) FROM path_block") == "4")
        #expect(raw.value("SELECT count(*) FROM path_probe WHERE round_ns < \(Self.t0 + 2 * Self.hour)") == "0")
        #expect(raw.value("SELECT count(*) FROM path_probe") == "\(all.count { $0.roundNs >= Self.t0 + 2 * Self.hour })")
        #expect(try Self.answers(db, targets) == before)
        #expect(try db.compact(hoursEndingBefore: Self.t0 + 2 * Self.hour + Self.hour / 2, limit: 1) == 0)

        // Rounds still arriving: in the current hour, and late into a
        // compacted one (a held batch); one repeats a key a block holds,
        // which the rows alone would have ignored.
        let late = PathProbeRecord(targetID: targets[0], roundNs: Self.t0 + 5, ttl: 1, toTarget: true, sentNs: Self.t0 + 5,
                                   receivedNs: Self.t0 + 900_000, from: "198.51.100.99", answer: .echoReply, icmpType: 0, icmpCode: 0)
        let repeated = PathProbeRecord(targetID: targets[1], roundNs: all.first { $0.targetID == targets[1] }!.roundNs,
                                       ttl: 1, toTarget: false, sentNs: 1)
        let current = PathProbeRecord(targetID: targets[1], roundNs: Self.t0 + 2 * Self.hour + 1, ttl: 1, toTarget: true,
                                      sentNs: Self.t0 + 2 * Self.hour + 1)
        var batch = WriteBatch()
        batch.pathProbes = [late, repeated, current]
        try db.write(batch, session: session)
        let expected = (all + [late, current]).sorted { ($0.targetID, $0.roundNs, $0.ttl) < ($1.targetID, $1.roundNs, $1.ttl) }
        #expect(try db.pathProbes(targets: nil, from: .min, to: .max) == expected)
        #expect(try db.compact(hoursEndingBefore: Self.t0 + 2 * Self.hour + Self.hour / 2, limit: 1) == 2)
        #expect(try db.pathProbes(targets: nil, from: .min, to: .max) == expected)
        #expect(raw.value("SELECT count(*) FROM path_probe WHERE round_ns < \(Self.t0 + 2 * Self.hour)") == "0")
        #expect(raw.value("SELECT count(*) FROM path_block") == "4")
        // Once the third hour is finished too, every round is in a block.
        #expect(try db.compact(hoursEndingBefore: Self.t0 + 4 * Self.hour, limit: 10) == 2)
        #expect(raw.value("SELECT count(*) FROM path_probe") == "0")
        #expect(try db.pathProbes(targets: nil, from: .min, to: .max) == expected)
    }

    /// Several ranges at once (a report skipping summarized hours) read
    /// what the ranges read one by one, target by target in (round, ttl)
    /// order, from blocks, rows and both in one hour.
    @Test func severalRangesReadWhatEachReadsInKeyOrder() throws {
        let (db, targets, session, _) = try filled("r.db")
        #expect(try db.compact(hoursEndingBefore: Self.t0 + Self.hour + 1, limit: 1) == 2)
        // A held round written late into the compacted first hour.
        var batch = WriteBatch()
        batch.pathProbes = [PathProbeRecord(targetID: targets[1], roundNs: Self.t0 + 11, ttl: 2, toTarget: false, sentNs: Self.t0 + 11)]
        try db.write(batch, session: session)
        let h = Self.hour
        let shapes: [[(Int64, Int64)]] = [
            [(Self.t0, Self.t0 + h), (Self.t0 + 2 * h, Self.t0 + 3 * h)],
            [(Self.t0 + h / 3, Self.t0 + h / 2), (Self.t0 + h - 7, Self.t0 + 2 * h + 60_000_000_000), (Self.t0 + 5 * h / 2, .max)],
            [(.min, Self.t0 + 12), (Self.t0 + 12, .max)],
            [(Self.t0 + h, Self.t0 + h)],
        ]
        for ranges in shapes {
            for wanted in [nil, Set([targets[1]])] as [Set<Int64>?] {
                let one = try ranges.flatMap { try db.pathProbes(targets: wanted, from: $0.0, to: $0.1) }
                let expected = one.sorted { ($0.targetID, $0.roundNs, $0.ttl) < ($1.targetID, $1.roundNs, $1.ttl) }
                #expect(try db.pathProbes(targets: wanted, ranges: ranges) == expected, "\(ranges) \(String(describing: wanted))")
            }
        }
        #expect(try db.pathProbes(targets: nil, ranges: [(.min, .max)]).count > 0)
    }

    @Test func aCompactionStoppedAtAnyPhaseLosesNothing() throws {
        struct Stop: Error {}
        for stopAt in [CompactionPhase.pathBlockStored, .pathHourMoved] {
            let (db, targets, _, _) = try filled("stop-\(stopAt).db")
            let before = try Self.answers(db, targets)
            db.compactionPhase = { phase in if phase == stopAt { throw Stop() } }
            #expect(throws: Stop.self) { try db.compact(hoursEndingBefore: Self.t0 + 3 * Self.hour, limit: 1) }
            db.compactionPhase = nil
            let raw = RawSQLite(folder.file("stop-\(stopAt).db"))
            // Stopped inside the first target-hour's transaction: rolled back;
            // after it: that one target-hour moved, the rest still rows.
            #expect(raw.value("SELECT count(*) FROM path_block") == (stopAt == .pathBlockStored ? "0" : "1"))
            #expect(try Self.answers(db, targets) == before, "stopped at \(stopAt)")
            #expect(try db.compact(hoursEndingBefore: Self.t0 + 3 * Self.hour, limit: 10) == (stopAt == .pathBlockStored ? 6 : 5))
            #expect(raw.value("SELECT count(*) FROM path_probe WHERE round_ns < \(Self.t0 + 2 * Self.hour)") == "0")
            #expect(try Self.answers(db, targets) == before, "finished after a stop at \(stopAt)")
        }
    }

    @Test func pruneDeletesPathBlocksByTheSameCutoff() throws {
        let (db, targets, _, all) = try filled("p.db")
        try db.compact(hoursEndingBefore: Self.t0 + 3 * Self.hour, limit: 10)
        let raw = RawSQLite(folder.file("p.db"))
        #expect(raw.value("SELECT count(*) FROM path_block") == "6")
        // Mid-hour: the first hour's blocks go whole, the second's are cut.
        let cutoff = Self.t0 + Self.hour + 1_250_000_000_000
        var pruning = Database.Pruning(cutoff: cutoff)
        while try !pruning.step(db) {}
        #expect(pruning.otherRows == Int64(all.count { $0.roundNs < cutoff }))
        let kept = all.filter { $0.roundNs >= cutoff }.sorted { ($0.targetID, $0.roundNs, $0.ttl) < ($1.targetID, $1.roundNs, $1.ttl) }
        #expect(try db.pathProbes(targets: nil, from: .min, to: .max) == kept)
        #expect(raw.value("SELECT count(*) FROM path_block") == "4")
        #expect(raw.value("SELECT min(first_round_ns) >= \(cutoff) FROM path_block") == "1")
        #expect(try db.pathProbes(targets: [targets[0]], from: cutoff, to: Self.t0 + 2 * Self.hour) == kept.filter {
            $0.targetID == targets[0] && $0.roundNs < Self.t0 + 2 * Self.hour
        })
        // A second run finds nothing older.
        var again = Database.Pruning(cutoff: cutoff)
        while try !again.step(db) {}
        #expect(again.otherRows == 0)
    }

    @Test func aDamagedPathBlockIsACorruptStoreErrorNotACrash() throws {
        let (db, targets, _, _) = try filled("d.db")
        try db.compact(hoursEndingBefore: Self.t0 + 3 * Self.hour, limit: 10)
        let raw = RawSQLite(folder.file("d.db"))
        raw.execute("UPDATE path_block SET count = count + 1 WHERE start_ns = \(Self.t0) AND target_id = \(targets[0])")
        raw.execute("UPDATE path_block SET data = substr(data, 1, 40) WHERE start_ns = \(Self.t0 + Self.hour)")
        for from in [Self.t0, Self.t0 + Self.hour] {
            let error = #expect(throws: StoreError.self) { try db.pathProbes(targets: nil, from: from, to: from + Self.hour) }
            #expect(error?.resultCode == .corrupt)
        }
    }
}
