// The writer and the stop, driven by a BlockingClock on real threads with
// a store that refuses writes on cue: no root, no sockets, no real time.
import Foundation
import Synchronization
import Testing
@testable import Recorder
import Store

/// Batches the test hands to the writer, as the engine would.
final class QueueSource: BatchSource, Sendable {
    let next = Mutex(WriteBatch())
    func add(probes sent: [Int64], target: Int64 = 1) {
        next.withLock { batch in
            for s in sent { batch.probes.append(ProbeRecord(sentNs: s, targetID: target)) }
        }
    }
    func cutBatch() -> WriteBatch { next.withLock { b in defer { b = WriteBatch() }; return b } }
    func takeEvents() -> [EngineEvent] { [] }
}

/// Records what it is given; refuses the next `failures` writes.
final class RecordingStore: BatchStore, Sendable {
    struct Refused: Error {}
    let written = Mutex<[WriteBatch]>([])
    let failures = Mutex(0)
    func write(_ batch: WriteBatch, session: Int64) throws {
        try failures.withLock { n in
            if n > 0 { n -= 1; throw Refused() }
        }
        written.withLock { $0.append(batch) }
    }
    var probes: [Int64] { written.withLock { $0.flatMap { $0.probes.map(\.sentNs) } } }
}

/// A stop request the test raises; seen at the writer's next wake-up.
final class TestStop: StopRequest, Sendable {
    let clock: BlockingClock
    let requested = Atomic(false)
    init(clock: BlockingClock) { self.clock = clock }
    func wait(untilMonotonicNs deadline: Int64) -> String? {
        clock.sleep(untilMonotonicNs: deadline)
        return requested.load(ordering: .relaxed) ? "SIGTERM" : nil
    }
}

/// A writer on its own thread, as the recorder's main thread runs it.
final class WriterRun: Sendable {
    let clock = BlockingClock()
    let source = QueueSource()
    let store = RecordingStore()
    let log = Mutex<[String]>([])
    let turn = WriteTurn()
    let outcome = Mutex<String?>(nil)
    let finished = DispatchSemaphore(value: 0)
    static let flush: Int64 = 1_000_000_000

    init(maxHeld: Int = 1_000_000, before: (@Sendable () -> Void)? = nil) {
        let stop = TestStop(clock: clock)
        stopRequest = stop
        Thread { [self] in
            var writer = Writer(store: store, source: source, clock: clock, sessionID: 1, flushNs: Self.flush,
                                maxHeldProbes: maxHeld, databasePath: "test.db", turn: turn,
                                log: { line in self.log.withLock { $0.append(line) } })
            var request = stop
            let reason = writer.run(until: &request)
            do {
                try writer.finish()
                outcome.withLock { $0 = reason }
            } catch {
                outcome.withLock { $0 = "\(error)" }
            }
            finished.signal()
        }.start()
    }
    let stopRequest: TestStop

    /// One flush period later, with the writer asleep again.
    func flush() {
        #expect(clock.waitForSleepers(1) != nil)
        clock.advance(Self.flush)
        #expect(clock.waitForSleepers(1) != nil)
    }

    /// Raises the stop and waits for the writer's last batch.
    func stop(advancing ns: Int64 = 1_000_000) -> String? {
        #expect(clock.waitForSleepers(1) != nil)
        stopRequest.requested.store(true, ordering: .relaxed)
        clock.advance(ns)
        // finish() retries on the same clock: keep time moving until it is done.
        while finished.wait(timeout: .now() + .milliseconds(20)) == .timedOut {
            if clock.waitForSleepers(1, within: 0.05) != nil { clock.advance(200_000_000) }
        }
        return outcome.withLock { $0 }
    }
}

@Suite struct WriterTests {
    @Test func commitsOneBatchPerFlushPeriodStampedWithTheWallClock() {
        let run = WriterRun()
        #expect(run.clock.waitForSleepers(1) == [run.clock.monotonicNs() + WriterRun.flush])
        run.source.add(probes: [10, 20])
        run.flush()
        run.source.add(probes: [30])
        let wall = run.clock.wallNs() + WriterRun.flush
        run.flush()
        let batches = run.store.written.withLock { $0 }
        #expect(batches.map { $0.probes.map(\.sentNs) } == [[10, 20], [30]])
        #expect(batches.last?.heartbeatNs == wall)
        #expect(!run.turn.writerIsHolding)
        #expect(run.stop() == "SIGTERM")
    }

    @Test func holdsBatchesInOrderWhileTheDatabaseRefusesThemAndHoldsTheUpkeepBack() {
        let run = WriterRun()
        run.store.failures.withLock { $0 = 2 }
        run.source.add(probes: [1, 2])
        run.flush()
        run.source.add(probes: [3])
        run.flush()
        #expect(run.store.written.withLock { $0.isEmpty })
        #expect(run.turn.writerIsHolding)  // the upkeep waits
        run.source.add(probes: [4])
        run.flush()
        #expect(run.store.written.withLock { $0.map { $0.probes.map(\.sentNs) } } == [[1, 2, 3, 4]])
        #expect(!run.turn.writerIsHolding)
        let lines = run.log.withLock { $0 }
        #expect(lines.count == 2)
        #expect(lines.first?.hasPrefix("cannot write to test.db (") == true)
        #expect(lines.last == "database writable again; all held probes are written")
        _ = run.stop()
    }

    @Test func dropsTheOldestBeyondTheLimitAndSaysSoOnce() {
        let run = WriterRun(maxHeld: 3)
        run.store.failures.withLock { $0 = 3 }
        for k in 0..<3 {
            run.source.add(probes: [Int64(k) * 10 + 1, Int64(k) * 10 + 2])
            run.flush()
        }
        run.flush()
        let batches = run.store.written.withLock { $0 }
        #expect(batches.count == 1)
        #expect(batches.first?.probes.map(\.sentNs) == [12, 21, 22])
        #expect(batches.first?.gaps == [GapRecord(sessionID: 1, startNs: 1, endNs: 12, reason: .dropped)])
        #expect(run.log.withLock { $0.filter { $0.hasPrefix("more than 3 probes unwritten") }.count } == 1)
        _ = run.stop()
    }

    @Test func theLastBatchHoldsWhatCameBeforeTheStopAndIsRetried() {
        let run = WriterRun()
        run.source.add(probes: [5])
        run.flush()
        run.source.add(probes: [6, 7])
        run.store.failures.withLock { $0 = 3 }
        #expect(run.stop() == "SIGTERM")
        #expect(run.store.probes == [5, 6, 7])
        #expect(run.store.written.withLock { $0.count } == 2)
    }

    @Test func theLastBatchGivesUpAfter25Attempts() {
        let run = WriterRun()
        run.source.add(probes: [5])
        run.store.failures.withLock { $0 = 1_000 }
        let outcome = run.stop()
        #expect(outcome?.contains("could not write the last probes to test.db") == true)
        #expect(run.store.failures.withLock { $0 } == 1_000 - 25)
    }
}

@Suite struct DropOldestProbesTests {
    @Test func dropsTheOldestWithTheirRowsAndGrowsOneGap() {
        var batch = WriteBatch()
        for s in [100, 200, 300, 400, 500] as [Int64] { batch.probes.append(ProbeRecord(sentNs: s, targetID: 1)) }
        batch.replies = [ReplyRecord(sentNs: 100, targetID: 1, rttNs: 9), ReplyRecord(sentNs: 300, targetID: 1, rttNs: 9)]
        batch.icmpErrors = [200, 400].map {
            ICMPErrorRecord(sentNs: $0, targetID: 1, rttNs: 5, family: 4, type: 3, code: 1, source: "192.0.2.9")
        }
        batch.gaps = [GapRecord(sessionID: 7, startNs: 150, endNs: 160, reason: .stalled)]

        let first = batch.dropOldestProbes(keeping: 3, session: 7, growing: nil)
        #expect(batch.probes.map(\.sentNs) == [300, 400, 500])
        #expect(batch.replies.map(\.sentNs) == [300])
        #expect(batch.icmpErrors.map(\.sentNs) == [400])
        #expect(first == GapRecord(sessionID: 7, startNs: 100, endNs: 300, reason: .dropped))
        #expect(batch.gaps.count == 2)

        batch.probes.append(ProbeRecord(sentNs: 600, targetID: 1))
        let grown = batch.dropOldestProbes(keeping: 2, session: 7, growing: first)
        #expect(batch.probes.map(\.sentNs) == [500, 600])
        #expect(grown == GapRecord(sessionID: 7, startNs: 100, endNs: 500, reason: .dropped))
        // The grown gap replaces the first (same start); the stall stays.
        #expect(batch.gaps == [GapRecord(sessionID: 7, startNs: 150, endNs: 160, reason: .stalled), grown!])
    }

    @Test func withinTheLimitNothingChanges() {
        var batch = WriteBatch()
        batch.probes = [ProbeRecord(sentNs: 1, targetID: 1), ProbeRecord(sentNs: 2, targetID: 1)]
        let gap = GapRecord(sessionID: 7, startNs: 0, endNs: 1, reason: .dropped)
        #expect(batch.dropOldestProbes(keeping: 2, session: 7, growing: gap) == gap)
        #expect(batch.probes.count == 2)
        #expect(batch.gaps.isEmpty)
    }
}
