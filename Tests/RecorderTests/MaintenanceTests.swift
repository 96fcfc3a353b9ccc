// The upkeep: its maintenance step (bounded compaction of hours that ended
// more than 30 minutes ago, hourly retention in steps) and its thread, which
// steps once a period on a connection of its own, waits while the writer
// holds probes it could not write, and stops when the recorder does.
import Foundation
import Synchronization
import Testing
@testable import Recorder
@testable import Store

@Suite struct MaintenanceTests {
    static let hour: Int64 = 3_600_000_000_000
    static let t0: Int64 = 1_767_225_600_000_000_000  // a whole UTC hour

    /// `hours` hours of 3 targets at 10 s from t0, in plain rows.
    func history(hours: Int, from t0: Int64 = Self.t0) throws -> (Database, String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pingem-maint-\(UUID().uuidString).db").path
        let db = try Database(path: path, mode: .readWrite)
        let ids = try (1...3).map { try db.target(name: "t\($0)", host: "192.0.2.\($0)").id }
        let session = try db.beginSession(
            NewSession(runID: 1, pid: 1, hostname: "h", version: "t", socketKind: "raw", intervalNs: 10_000_000_000,
                       payloadBytes: 56, startedNs: t0), targets: [])
        var batch = WriteBatch()
        for k in 0..<(hours * 360) {
            for id in ids {
                batch.probes.append(ProbeRecord(sentNs: t0 + Int64(k) * 10_000_000_000 + id * 1_000 + Int64(k % 7) * 31,
                                                targetID: id, rttNs: k % 50 == 0 ? nil : 20_000_000 + Int64(k % 13) * 1_001))
            }
        }
        batch.heartbeatNs = t0 + Int64(hours) * Self.hour
        try db.write(batch, session: session)
        return (db, path)
    }

    func count(_ db: Database) throws -> Int {
        var n = 0
        try db.forEachProbe(from: .min, to: .max, targets: nil) { _ in n += 1 }
        return n
    }

    @Test func compactsOneTransactionPerStepOnlyWhenTheHourEndedHalfAnHourAgo() throws {
        let (db, path) = try history(hours: 3)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var maintenance = RecorderService.Maintenance(retainNs: nil)
        // 29 minutes after the first hour ended: nothing is due.
        maintenance.step(db, wallNs: Self.t0 + Self.hour + 29 * 60_000_000_000)
        #expect(try db.statusSummary().probeCount == 3 * 3 * 360)
        var blocks: [Int] = []
        let now = Self.t0 + 2 * Self.hour + 31 * 60_000_000_000  // hours 0 and 1 are due
        for _ in 0..<3 {
            maintenance.step(db, wallNs: now)
            blocks.append(try blockCount(path))
        }
        #expect(blocks == [3, 6, 6])  // one transaction per step: an hour's 3 targets fit the budget
        #expect(try count(db) == 3 * 3 * 360)
    }

    @Test func retentionPrunesOnceAnHourInSteps() throws {
        let (db, path) = try history(hours: 4)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var maintenance = RecorderService.Maintenance(retainNs: 2 * Self.hour)
        let now = Self.t0 + 4 * Self.hour + 31 * 60_000_000_000
        for _ in 0..<20 { maintenance.step(db, wallNs: now) }
        var first: Int64 = .max
        try db.forEachProbe(from: .min, to: .max, targets: nil) { first = min(first, $0.sentNs) }
        #expect(first >= now - 2 * Self.hour)
        #expect(first < now - 2 * Self.hour + 20_000_000_000)
        // Sessions stay.
        #expect(try db.sessions(overlapping: .min, .max).count == 1)
    }

    @Test func retainShorterThanTwoHoursIsRefused() {
        var options = RecordOptions(targets: [try! TargetSpec(parsing: "192.0.2.1")], intervalNs: 1_000_000_000,
                                    payloadSize: 56, flushNs: 1_000_000_000, databasePath: "/nonexistent/x.db",
                                    verbose: false, version: "t")
        options.retainNs = Self.hour
        #expect(throws: RecorderError.self) { try RecorderService.validate(options) }
        options.retainNs = 400 * 24 * Self.hour
        #expect(throws: Never.self) { try RecorderService.validate(options) }
    }

    func blockCount(_ path: String) throws -> Int {
        // Through a second connection, as any reader would see it.
        Int(try Database(path: path, mode: .readOnly).blockCount())
    }

    @Test func theUpkeepThreadStepsOncePerPeriodYieldsToAHoldingWriterAndStops() throws {
        let clock = BlockingClock()
        let firstHour = clock.wallNs() / Self.hour * Self.hour - 4 * Self.hour
        let (db, path) = try history(hours: 3, from: firstHour)  // all three hours due
        defer { try? FileManager.default.removeItem(atPath: path) }
        let threads = RecorderThreads()
        let turn = WriteTurn()
        let log = Mutex<[String]>([])
        let loop = RecorderService.UpkeepLoop(databasePath: path, retainNs: nil, periodNs: 1_000_000_000, turn: turn,
                                              clock: clock, log: { line in log.withLock { $0.append(line) } })
        let done = DispatchSemaphore(value: 0)
        Thread {
            loop.run(threads)
            done.signal()
        }.start()
        func blocksAfterAPeriod() throws -> Int {
            #expect(clock.waitForSleepers(1) != nil)
            clock.advance(1_000_000_000)
            #expect(clock.waitForSleepers(1) != nil)
            return try blockCount(path)
        }
        // The first step runs at once: one hour (3 targets) per step.
        #expect(clock.waitForSleepers(1) != nil)
        #expect(try blockCount(path) == 3)
        #expect(try blocksAfterAPeriod() == 6)
        turn.writerIsHolding = true
        #expect(try blocksAfterAPeriod() == 6)
        #expect(try blocksAfterAPeriod() == 6)
        turn.writerIsHolding = false
        #expect(try blocksAfterAPeriod() == 9)
        #expect(try count(db) == 3 * 3 * 360)

        threads.stop()
        clock.advance(1_000_000_000)
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(log.withLock { $0 }.isEmpty)
    }

    @Test func aStopEndsTheUpkeepBeforeItsNextTransaction() throws {
        // The recorder stops while the upkeep works: it throws at its next
        // transaction, says nothing, and what it left reads the same.
        let clock = BlockingClock()
        let firstHour = clock.wallNs() / Self.hour * Self.hour - 4 * Self.hour
        let (db, path) = try history(hours: 3, from: firstHour)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let threads = RecorderThreads()
        threads.stop()  // stopping before the first step
        let log = Mutex<[String]>([])
        var maintenance = RecorderService.Maintenance(retainNs: nil, log: { line in log.withLock { $0.append(line) } })
        let upkeepDB = try Database(path: path, mode: .readWrite)
        upkeepDB.beforeWriteTransaction = { if threads.isStopping { throw RecorderService.UpkeepLoop.Stopped() } }
        maintenance.step(upkeepDB, wallNs: clock.wallNs())
        #expect(log.withLock { $0 }.isEmpty)
        #expect(try blockCount(path) == 0)
        #expect(try count(db) == 3 * 3 * 360)
    }

    /// `summary` as a build before encoding 3 wrote it: version byte 2, and
    /// no response bucket counts (encoding 3 ends with their count, -1 for none).
    func encodingTwo(_ summary: HourSummary) -> [UInt8] {
        var old = summary
        old.responseBuckets = nil
        var bytes = old.encoded()
        #expect(bytes.last == 1)  // zigzag(-1): no buckets
        bytes[0] = 2
        return Array(bytes.dropLast())
    }

    @Test func idleStepsSummarizeOutdatedHoursAgainButKeepPrunedOnes() throws {
        let (db, path) = try history(hours: 4)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let hours = (0..<4).map { Self.t0 + Int64($0) * Self.hour }
        try db.summarizeHours(endingBy: Self.t0 + 4 * Self.hour, maxHours: 10)
        var current: [HourSummary] = []
        for target in try db.targets() { current += try db.summaries(from: .min, to: .max, target: target.id) }
        #expect(current.count == 12 && current.allSatisfy { $0.responseBuckets != nil })
        // An older build's summaries, and hour 0's raw probes pruned since.
        try db.inTransaction {
            try db.withStatement("UPDATE summary SET data = ?1 WHERE target_id = ?2 AND hour_ns = ?3") { statement in
                for summary in current {
                    statement.reset()
                    statement.bind(encodingTwo(summary), at: 1)
                    statement.bind(summary.targetID, at: 2)
                    statement.bind(summary.hourNs, at: 3)
                    try statement.run()
                }
            }
        }
        while try !db.pruneStep(sentBefore: hours[1]).done {}
        #expect(try db.outdatedSummaryHours() == hours)

        var maintenance = RecorderService.Maintenance(retainNs: nil)
        let now = Self.t0 + 4 * Self.hour + 31 * 60_000_000_000
        for _ in 0..<10 { maintenance.step(db, wallNs: now) }
        // Hours 1 to 3 are as this build summarizes them; hour 0, whose
        // probes are gone, keeps its summary: the only record of it.
        #expect(try db.outdatedSummaryHours() == [hours[0]])
        var after: [HourSummary] = []
        for target in try db.targets() { after += try db.summaries(from: .min, to: .max, target: target.id) }
        #expect(after.filter { $0.hourNs != hours[0] } == current.filter { $0.hourNs != hours[0] })
        #expect(after.filter { $0.hourNs == hours[0] }.map(\.sent) == [360, 360, 360])
        #expect(after.filter { $0.hourNs == hours[0] }.allSatisfy { $0.responseBuckets == nil })
    }
}
