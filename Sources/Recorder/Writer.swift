// The writer: one batch per --flush period into the database, the probes
// held in memory (in order) while it cannot be written, and the last batch
// at the stop. It runs on the main thread, which also waits for the stop
// signal, so a signal never lands between a cut batch and its commit.
//
// Invariant: a cut batch is either committed or kept in `pending`; the only
// way probes leave memory unwritten is dropOldestProbes, which records the
// dropped stretch as a `gap` row.

import Glibc
import Store

/// Where the writer takes its batches from (the probe engine).
protocol BatchSource: AnyObject {
    func cutBatch() -> WriteBatch
    func takeEvents() -> [EngineEvent]
}

extension ProbeEngine: BatchSource {}

/// Where the writer commits batches (the database): a protocol so tests can
/// refuse writes on cue.
protocol BatchStore: AnyObject {
    func write(_ batch: WriteBatch, session: Int64) throws
    /// The write that also places replies of probes moved in earlier
    /// batches (StampMoves); stores that never move a probe need not.
    func write(_ batch: WriteBatch, session: Int64, moves: inout StampMoves, nowNs: Int64) throws
}

extension BatchStore {
    func write(_ batch: WriteBatch, session: Int64, moves: inout StampMoves, nowNs: Int64) throws {
        try write(batch, session: session)
    }
}

extension Database: BatchStore {}

/// What the writer waits on between flushes.
protocol StopRequest {
    /// Waits until the monotonic clock reads `deadline` at most; returns the
    /// name of the stop request if one came (may also return nil early).
    mutating func wait(untilMonotonicNs deadline: Int64) -> String?
}

/// SIGINT and SIGTERM, and SIGHUP, taken by sigtimedwait only: `block()`
/// masks them before any thread exists, so every thread inherits the mask
/// (and SIGHUP's default action, ending the process, never happens).
struct SignalStop: StopRequest {
    private var signals = sigset_t()
    private let clock: any RecorderClock
    /// Called on SIGHUP, on the waiting (main) thread; the wait goes on.
    var onHangup: () -> Void = {}

    init(clock: any RecorderClock) {
        self.clock = clock
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGHUP)
    }

    func block() {
        var signals = self.signals
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }

    mutating func wait(untilMonotonicNs deadline: Int64) -> String? {
        let left = max(0, deadline - clock.monotonicNs())
        var timeout = timespec(tv_sec: Int(left / 1_000_000_000), tv_nsec: Int(left % 1_000_000_000))
        let sig = sigtimedwait(&signals, nil, &timeout)
        if sig == SIGINT { return "SIGINT" }
        if sig == SIGTERM { return "SIGTERM" }
        if sig == SIGHUP { onHangup() }
        return nil  // timeout or EINTR: the caller looks at the clock again
    }
}

struct Writer {
    let store: any BatchStore
    let source: any BatchSource
    let clock: any RecorderClock
    let sessionID: Int64
    let flushNs: Int64
    let maxHeldProbes: Int
    /// For the log lines only.
    let databasePath: String
    let log: (String) -> Void
    /// Shared with the upkeep's connection, which lets every commit go first.
    let turn: WriteTurn

    private(set) var pending = WriteBatch()
    /// Probes the store moved off a taken key, for the replies still to
    /// come (a backward clock step; Database.write), kept for the engine's
    /// match window (the recorder passes it; by default every move is kept).
    private(set) var stampMoves: StampMoves
    private var failingSince: Int64? = nil
    /// The gap that covers probes dropped while the database stays
    /// unwritable; it grows with every drop until a commit succeeds.
    private var dropped: GapRecord? = nil

    init(store: any BatchStore, source: any BatchSource, clock: any RecorderClock, sessionID: Int64,
         flushNs: Int64, maxHeldProbes: Int, databasePath: String,
         matchWindowNs: Int64 = .max, turn: WriteTurn = WriteTurn(), log: @escaping (String) -> Void) {
        self.store = store; self.source = source; self.clock = clock; self.sessionID = sessionID
        self.flushNs = flushNs; self.maxHeldProbes = maxHeldProbes; self.databasePath = databasePath
        self.stampMoves = StampMoves(windowNs: matchWindowNs)
        self.turn = turn
        self.log = log
    }

    /// Commits one batch per --flush period until a stop is requested.
    /// Returns the stop request's name.
    mutating func run(until stop: inout some StopRequest) -> String {
        var flushDeadline = clock.monotonicNs() + flushNs
        while true {
            let now = clock.monotonicNs()
            if now < flushDeadline {
                if let reason = stop.wait(untilMonotonicNs: flushDeadline) { return reason }
                continue
            }
            flushDeadline += flushNs
            if flushDeadline <= now { flushDeadline = now + flushNs }
            drain()
            commit()
        }
    }

    /// Takes what the engine has not yet handed over into `pending`.
    mutating func drain() {
        pending.append(source.cutBatch())
        for event in source.takeEvents() { log(RecorderService.describe(event)) }
    }

    /// Writes `pending`; on failure keeps it (dropping the oldest probes
    /// beyond --max-held-probes) for the next flush.
    @discardableResult
    mutating func commit() -> Bool {
        pending.heartbeatNs = clock.wallNs()
        do {
            try turn.first { try store.write(pending, session: sessionID, moves: &stampMoves, nowNs: clock.monotonicNs()) }
            if failingSince != nil { log("database writable again; all held probes are written") }
            failingSince = nil
            turn.writerIsHolding = false
            dropped = nil
            pending = WriteBatch()
            return true
        } catch {
            if failingSince == nil {
                log("cannot write to \(databasePath) (\(error)); holding up to "
                    + "\(maxHeldProbes) probes in memory and retrying")
                failingSince = clock.wallNs()
                turn.writerIsHolding = true
            }
            if pending.probes.count > maxHeldProbes {
                if dropped == nil {
                    log("more than \(maxHeldProbes) probes unwritten: dropping the oldest; "
                        + "the dropped time is recorded as no data")
                }
                dropped = pending.dropOldestProbes(keeping: maxHeldProbes, session: sessionID, growing: dropped)
            }
            return false
        }
    }

    /// The last batch, once the threads that feed the engine are done:
    /// retried every 200 ms, 25 times, before giving up.
    mutating func finish() throws {
        drain()
        var attempts = 0
        while !commit() {
            attempts += 1
            if attempts >= 25 {
                throw RecorderError("could not write the last probes to \(databasePath); the session stays open and reports treat its end as a crash.")
            }
            clock.sleep(untilMonotonicNs: clock.monotonicNs() + 200_000_000)
        }
    }
}

extension WriteBatch {
    /// Drops the oldest probes so that `keeping` remain, with the replies and
    /// ICMP errors of the dropped ones (rows no report could place) and the
    /// path rounds that began before the first kept probe, and
    /// records the dropped stretch as a `gap` (reason 'dropped'): reports show
    /// it as no data, not loss. A gap from an earlier drop in the same outage
    /// of the database (`growing`) is extended instead (same start: the row
    /// replaces the old one). Returns the gap.
    mutating func dropOldestProbes(keeping: Int, session: Int64, growing: GapRecord?) -> GapRecord? {
        let excess = probes.count - keeping
        guard excess > 0 else { return growing }
        let firstDropped = probes[0].sentNs
        let firstKept = probes[excess].sentNs
        probes.removeFirst(excess)
        let droppedRange = firstDropped..<firstKept
        replies.removeAll { droppedRange.contains($0.sentNs) }
        icmpErrors.removeAll { droppedRange.contains($0.sentNs) }
        // Path rounds of the dropped stretch go too: it is "no data" for them as well.
        pathProbes.removeAll { $0.roundNs < firstKept }
        var gap = growing ?? GapRecord(sessionID: session, startNs: firstDropped, endNs: firstKept, reason: .dropped)
        gap.endNs = max(gap.endNs, firstKept)
        gaps.removeAll { $0.reason == .dropped && $0.startNs == gap.startNs }
        gaps.append(gap)
        return gap
    }

    /// Appends a later batch to this unwritten one (used while the database
    /// cannot be written: nothing is dropped, the rows keep their order).
    mutating func append(_ other: WriteBatch) {
        probes += other.probes
        replies += other.replies
        icmpErrors += other.icmpErrors
        addresses += other.addresses
        gaps += other.gaps
        targetChanges += other.targetChanges
        pathProbes += other.pathProbes
        pathHops += other.pathHops
        foreignPackets += other.foreignPackets
        heartbeatNs = max(heartbeatNs, other.heartbeatNs)
    }
}
