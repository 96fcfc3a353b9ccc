// `pingem record`: opens the sockets and the database, then runs four
// threads until SIGINT or SIGTERM:
//   sender   - sleeps to each slot on the monotonic clock and sends;
//   receiver - polls the sockets and matches what comes back;
//   writer   - commits one batch per --flush period (and the heartbeat);
//   resolver - re-resolves names every few minutes and after failures.
// The main thread only waits for the signal, then stops them in that order
// so that every probe sent and every reply received is in the last batch.

import Dispatch
import Foundation
import Glibc
import Store
import Synchronization

public struct RecordOptions: Sendable {
    public var targets: [TargetSpec]
    public var intervalNs: Int64
    public var payloadSize: Int
    public var flushNs: Int64
    public var databasePath: String
    public var verbose: Bool
    public var version: String
    /// Drop to this user right after opening the sockets and the database.
    public var user: String?
    /// The process umask: files and folders the recorder creates get
    /// 0666/0777 minus these bits (default: the owner only).
    public var umask: mode_t
    /// How many probes the recorder holds in memory while the database cannot
    /// be written (disk full, locked, ...). Beyond it the oldest are dropped
    /// and a `gap` row with reason 'dropped' says so. 1,000,000 probes are
    /// about 32 MB, and 2.7 hours of 100 targets at 1 s.
    public var maxHeldProbes: Int
    public static let defaultMaxHeldProbes = 1_000_000
    /// How often a resolved name is looked up again; while it fails, every
    /// min(10 s, this). Shorter only in tests (a hidden option).
    public var resolveEveryNs: Int64
    public static let defaultResolveEveryNs: Int64 = 300_000_000_000
    /// --retain: raw probes sent longer ago than this are pruned (once an
    /// hour, in small steps); nil keeps everything.
    public var retainNs: Int64?
    public init(targets: [TargetSpec], intervalNs: Int64, payloadSize: Int, flushNs: Int64,
                databasePath: String, verbose: Bool, version: String, user: String? = nil,
                umask: mode_t = 0o077, maxHeldProbes: Int = RecordOptions.defaultMaxHeldProbes,
                resolveEveryNs: Int64 = RecordOptions.defaultResolveEveryNs, retainNs: Int64? = nil) {
        self.retainNs = retainNs
        self.targets = targets; self.intervalNs = intervalNs; self.payloadSize = payloadSize
        self.flushNs = flushNs; self.databasePath = databasePath; self.verbose = verbose
        self.version = version; self.user = user; self.umask = umask; self.maxHeldProbes = maxHeldProbes
        self.resolveEveryNs = resolveEveryNs
    }
}

/// One line on stderr per significant event, stamped with the UTC time.
public enum RecorderLog {
    public static func line(_ message: String, wallNs: Int64 = SystemClock().wallNs()) {
        FileHandle.standardError.write(Data("\(isoUTC(wallNs)) pingem: \(message)\n".utf8))
    }

    static func isoUTC(_ ns: Int64) -> String {
        var seconds = time_t(ns / 1_000_000_000)
        var tm = tm()
        gmtime_r(&seconds, &tm)
        let ms = Int(ns % 1_000_000_000) / 1_000_000
        func p(_ v: Int32, _ w: Int) -> String {
            let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(p(tm.tm_year + 1900, 4))-\(p(tm.tm_mon + 1, 2))-\(p(tm.tm_mday, 2))T"
            + "\(p(tm.tm_hour, 2)):\(p(tm.tm_min, 2)):\(p(tm.tm_sec, 2)).\(p(Int32(ms), 3))Z"
    }
}

public enum RecorderService {
    static let minimumIntervalNs: Int64 = 10_000_000
    /// How long the receiver lets replies gather after reading some. Short
    /// enough that 10 ms of a 20,000 packets/s flood (FloodTests), about
    /// 200 KB of skbs, fits the socket buffer even where net.core.rmem_max
    /// is the stock 208 KiB (Linux doubles it: 416 KiB).
    static let receivePeriodNs: Int64 = 10_000_000

    /// Validates options; throws a one-sentence RecorderError.
    public static func validate(_ o: RecordOptions) throws {
        if o.targets.isEmpty {
            throw RecorderError("no target given: name at least one host, e.g. pingem record 192.0.2.1 example.com.")
        }
        if o.intervalNs < minimumIntervalNs {
            throw RecorderError("--interval must be at least 10ms.")
        }
        if o.payloadSize < ProbePayload.minimumSize || o.payloadSize > 65_000 {
            throw RecorderError("--size must be between \(ProbePayload.minimumSize) (what a probe's own fields need) and 65000 bytes.")
        }
        if o.flushNs < minimumIntervalNs || o.flushNs > 60_000_000_000 {
            throw RecorderError("--flush must be between 10ms and 60s.")
        }
        if o.maxHeldProbes < 1 {
            throw RecorderError("--max-held-probes must be at least 1.")
        }
        if let retain = o.retainNs, retain < Maintenance.compactAfterNs + Database.blockSpanNs {
            throw RecorderError("--retain must be at least 2h: hours are summarized and compacted 30 minutes after they end, and a summary needs its whole hour.")
        }
        if o.umask & ~0o777 != 0 {
            throw RecorderError("--umask must be an octal mode between 000 and 777, e.g. 077.")
        }
        let names = o.targets.map(\.name)
        if Set(names).count != names.count {
            throw RecorderError("a target is named twice: give each target once, or distinct labels (label=host).")
        }
    }

    public static func offset(index: Int, count: Int, intervalNs: Int64) -> Int64 {
        intervalNs * Int64(index) / Int64(max(count, 1))
    }

    /// Records until SIGINT or SIGTERM, then commits everything and returns.
    public static func run(_ options: RecordOptions, clock: SystemClock = SystemClock()) throws {
        try validate(options)

        // Signals go to the main thread's sigwait only: block them before any
        // thread exists, so the threads inherit the mask.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        // Before anything is created: the database, its folder, the lock file.
        Glibc.umask(options.umask)
        let permissions = 0o666 & ~options.umask
        // Look the user up while /etc is surely readable.
        let account = try options.user.map(Account.init(name:))

        let transport = try ICMPSockets.open(families: [.v4, .v6], largestPayload: options.payloadSize)
        let lock = try RecorderLock.acquire(databasePath: options.databasePath, permissions: permissions)
        defer { withExtendedLifetime(lock) {} }
        let db: Database
        do {
            db = try Database(path: options.databasePath, mode: .readWrite, permissions: permissions)
            try db.limitPageCache(kibibytes: 512)
            try db.limitWALSize(bytes: 16 << 20)
        } catch {
            // Refused: leave no lock file next to a database we never used.
            lock.removeCreatedFile()
            throw error
        }
        if let account {
            // The lock file is only ever ours: give it to the user, so a later
            // run as that user (setcap, systemd) can open it again.
            _ = chown(lock.lockPath, account.uid, account.gid)
            // The sockets and the open database stay usable; nothing after
            // this line runs with more rights than the user has.
            try account.become()
            // SQLite reopens nothing, but it creates the -wal/-shm files again
            // after a checkpoint resets them and needs the folder for that: a
            // database the user could not write would fail at the first batch,
            // so refuse it now, before any probe.
            try account.requireWritable(database: options.databasePath)
        }

        // Resolve every name before the first probe, so a start never shows
        // as a burst of "unresolved" loss.
        var resolved: [IPAddress?] = []
        for spec in options.targets {
            switch resolve(host: spec.host, families: transport.families) {
            case .resolved(let a):
                resolved.append(a)
                if spec.host != a.text { RecorderLog.line("\(spec.name): \(spec.host) resolved to \(a.text)") }
            case .failed(let why, _):
                resolved.append(nil)
                RecorderLog.line("\(spec.name): cannot resolve \(spec.host) (\(why)); its probes count as lost until it resolves")
            }
        }

        let initial = resolved
        var targets: [RecorderTarget] = []
        for spec in options.targets {
            let t = try db.target(name: spec.name, host: spec.host)
            targets.append(RecorderTarget(id: t.id, name: t.name, host: spec.host))
        }

        // The schedule starts at the next whole multiple of the interval on the
        // wall clock, so with 1 s probes every 5 m epoch holds exactly 300 slots.
        let monoNow = clock.monotonicNs()
        let wallNow = clock.wallNs()
        // At least 100 ms ahead, so the setup below never makes the first
        // slots late.
        var untilAligned = options.intervalNs - wallNow % options.intervalNs
        while untilAligned < 100_000_000 { untilAligned += options.intervalNs }
        let startMono = monoNow + untilAligned
        let startWall = wallNow + untilAligned

        var generator = SystemRandomNumberGenerator()  // getrandom(2)
        let runID = generator.next()
        let hostname = ProcessInfo.processInfo.hostName
        let sessionID = try db.beginSession(
            NewSession(runID: runID, pid: getpid(), hostname: hostname, version: options.version,
                       socketKind: transport.kind.rawValue, intervalNs: options.intervalNs,
                       payloadBytes: options.payloadSize, startedNs: startWall),
            targets: targets.enumerated().map { i, t in
                SessionTargetRecord(sessionID: 0, targetID: t.id,
                                    offsetNs: offset(index: i, count: targets.count, intervalNs: options.intervalNs))
            })

        let engine = ProbeEngine(
            config: EngineConfig(runID: runID, intervalNs: options.intervalNs, payloadSize: options.payloadSize),
            sessionID: sessionID, targets: targets, transport: transport, clock: clock,
            startMono: startMono, verbose: options.verbose)
        for (i, a) in initial.enumerated() { if let a { engine.setAddress(a, forTarget: i) } }

        RecorderLog.line("recording \(targets.count) target\(targets.count == 1 ? "" : "s") every "
            + "\(formatDuration(options.intervalNs)) into \(options.databasePath) "
            + "(\(transport.kind.rawValue) socket, session \(sessionID), pid \(getpid()))")

        let stopping = Atomic<Bool>(false)
        let workers = DispatchGroup()

        func spawn(_ name: String, joined: Bool = true, _ body: @escaping @Sendable () -> Void) {
            if joined { workers.enter() }
            let thread = Thread {
                body()
                if joined { workers.leave() }
            }
            thread.name = name
            thread.start()
        }

        // Where allowed (root, CAP_SYS_NICE, RLIMIT_RTPRIO), sender and
        // receiver wake ahead of every ordinary thread: on a busy machine a
        // waking CFS thread can wait milliseconds for a CPU, and each
        // millisecond is a probe off its slot; a receiver left waiting for
        // 0.4-0.7 s (seen at 10,000 probes/s while other builds ran) lets
        // the socket buffer overflow and the kernel drop replies. Both sleep
        // almost all the time (the receiver at least 10 ms after each read),
        // so they cannot starve anyone. Refused: stay as we are.
        @Sendable func preferRealtime() {
            var priority = sched_param()
            priority.sched_priority = 1
            _ = pthread_setschedparam(pthread_self(), SCHED_FIFO, &priority)
        }

        spawn("sender") {
            preferRealtime()
            // Only sendDue moves the schedule, and it says what is next.
            var deadline = engine.nextDeadline()
            while !stopping.load(ordering: .relaxed) {
                // Sleep in short steps so a stop is noticed within 100 ms.
                let now = clock.monotonicNs()
                if deadline > now {
                    clock.sleep(untilMonotonicNs: min(deadline, now + 100_000_000))
                    continue
                }
                deadline = engine.sendDue()
            }
        }

        spawn("receiver") {
            preferRealtime()
            while !stopping.load(ordering: .relaxed) {
                let packets = transport.receive(timeoutMilliseconds: 100)
                engine.handle(packets)
                // Having read something, let replies gather before the next
                // read: one wakeup and a few recvmmsg calls per period
                // instead of a wakeup and two recvmsg calls per reply (at
                // 1000 probes/s that was half the recorder's CPU time).
                // RTTs do not suffer: each packet keeps the kernel's receive
                // stamp, and its move onto the monotonic axis is exact
                // however late we read it (see RecorderClock).
                if !packets.isEmpty {
                    clock.sleep(untilMonotonicNs: clock.monotonicNs() + receivePeriodNs)
                }
            }
            // One last non-blocking read: replies already queued in the kernel
            // when the signal came are received, not dropped.
            engine.handle(transport.receive(timeoutMilliseconds: 0))
        }

        // Not joined at stop: getaddrinfo may block for seconds when DNS is
        // down, and nothing it does must reach the last batch.
        spawn("resolver", joined: false) {
            let every = options.resolveEveryNs
            let retry = min(10_000_000_000, every)
            let start = clock.monotonicNs()
            var next = [Int64](repeating: start + every, count: options.targets.count)
            var last = [Int64](repeating: start, count: options.targets.count)
            var failing = [Bool](repeating: false, count: options.targets.count)
            for (i, a) in initial.enumerated() where a == nil {
                next[i] = clock.monotonicNs() + retry
                failing[i] = true
            }
            while !stopping.load(ordering: .relaxed) {
                let now = clock.monotonicNs()
                for (i, spec) in options.targets.enumerated() where IPAddress(parsing: spec.host) == nil {
                    // Every `every`; every `retry` while the name or the sends fail.
                    let due = now >= next[i] || (engine.isFailing(target: i) && now - last[i] >= retry)
                    guard due else { continue }
                    last[i] = now
                    switch resolve(host: spec.host, families: transport.families) {
                    case .resolved(let a):
                        engine.setAddress(a, forTarget: i)
                        if failing[i] { RecorderLog.line("\(spec.name): \(spec.host) resolves again, to \(a.text)") }
                        failing[i] = false
                        next[i] = now + every
                    case .failed(let why, let nameGone):
                        // A name that is gone is no longer probed at its old
                        // address: its probes are "unresolved" loss. A resolver
                        // that cannot answer (DNS down) says nothing about the
                        // target, which keeps its last address.
                        let cleared = nameGone && engine.clearAddress(forTarget: i)
                        if !failing[i] {
                            RecorderLog.line("\(spec.name): cannot resolve \(spec.host) (\(why)); "
                                + (cleared || engine.currentAddress(ofTarget: i) == nil
                                    ? "its probes count as lost until it resolves; retrying every \(retry / 1_000_000_000)s"
                                    : "still probing \(engine.currentAddress(ofTarget: i)!.text); retrying every \(retry / 1_000_000_000)s"))
                        }
                        failing[i] = true
                        next[i] = now + retry
                    }
                }
                clock.sleep(untilMonotonicNs: clock.monotonicNs() + 100_000_000)
            }
        }

        // The main thread is the writer: it commits one batch per --flush
        // period and wakes early only for SIGINT/SIGTERM (sigtimedwait).
        var pending = WriteBatch()
        var failingSince: Int64? = nil
        // The gap that covers probes dropped while the database stays
        // unwritable; it grows with every drop until a commit succeeds.
        var dropped: GapRecord? = nil
        func commit() -> Bool {
            pending.heartbeatNs = clock.wallNs()
            do {
                try db.write(pending, session: sessionID)
                if failingSince != nil { RecorderLog.line("database writable again; all held probes are written") }
                failingSince = nil
                dropped = nil
                pending = WriteBatch()
                return true
            } catch {
                // Keep everything in memory (in order) and retry next flush.
                if failingSince == nil {
                    RecorderLog.line("cannot write to \(options.databasePath) (\(error)); holding up to "
                        + "\(options.maxHeldProbes) probes in memory and retrying")
                    failingSince = clock.wallNs()
                }
                if pending.probes.count > options.maxHeldProbes {
                    if dropped == nil {
                        RecorderLog.line("more than \(options.maxHeldProbes) probes unwritten: dropping the oldest; "
                            + "the dropped time is recorded as no data")
                    }
                    dropped = pending.dropOldestProbes(keeping: options.maxHeldProbes, session: sessionID, growing: dropped)
                }
                return false
            }
        }
        func drain() {
            pending.append(engine.cutBatch())
            for event in engine.takeEvents() { RecorderLog.line(describe(event)) }
        }

        var maintenance = Maintenance(retainNs: options.retainNs)

        var flushDeadline = clock.monotonicNs() + options.flushNs
        var received: Int32 = 0
        while true {
            let now = clock.monotonicNs()
            if now < flushDeadline {
                var timeout = timespec(tv_sec: Int((flushDeadline - now) / 1_000_000_000),
                                       tv_nsec: Int((flushDeadline - now) % 1_000_000_000))
                let sig = sigtimedwait(&signals, nil, &timeout)
                if sig == SIGINT || sig == SIGTERM { received = sig; break }
                continue  // timeout or EINTR: look at the clock again
            }
            flushDeadline += options.flushNs
            if flushDeadline <= now { flushDeadline = now + options.flushNs }
            drain()
            // Housekeeping only after a batch is written: while the database
            // cannot be written, probes held in memory come first.
            if commit() { maintenance.step(db, wallNs: clock.wallNs()) }
        }

        let stopWall = clock.wallNs()
        RecorderLog.line("received \(received == SIGINT ? "SIGINT" : "SIGTERM"); writing everything and stopping")
        stopping.store(true, ordering: .relaxed)
        workers.wait()  // sender and receiver are done: nothing more can arrive
        drain()
        var attempts = 0
        while !commit() {
            attempts += 1
            if attempts >= 25 {
                throw RecorderError("could not write the last probes to \(options.databasePath); the session stays open and reports treat its end as a crash.")
            }
            usleep(200_000)
        }
        try db.endSession(sessionID, stoppedNs: stopWall)
        transport.close()
        let (probes, replies) = engine.counts
        RecorderLog.line("stopped: \(probes) probes sent, \(replies) replies matched in this session")
    }

    /// The writer's housekeeping, one bounded step after each committed
    /// batch, each part short (the longest, compacting an hour, takes about
    /// 2 s at 1,000 probes/s, once an hour), so the next flush is late by
    /// that at most:
    ///   1. hour summaries: one complete hour (all its targets) that ended
    ///      more than 30 minutes ago (replies are matched for 10 minutes, so
    ///      such an hour's rows are final); one hour per flush catches up a
    ///      year-old database (8,760 hours) in under three hours of recording;
    ///   2. compaction: one hour (all its targets) into blocks, for hours
    ///      that ended more than 30 minutes ago;
    ///   3. retention (--retain): once an hour, one prune step per flush
    ///      until nothing before the cutoff is left (a prune step summarizes
    ///      the hours it deletes first), then one incremental vacuum step per
    ///      flush until the free pages are given back.
    /// Reports read raw probes wherever a summary is missing.
    /// A failure is said once on stderr and retried at the next flush.
    struct Maintenance {
        static let compactAfterNs: Int64 = 30 * 60 * 1_000_000_000
        static let summarizePerStep = 1  // one hour, all its targets
        static let pruneEveryNs: Int64 = 3_600_000_000_000
        static let vacuumPagesPerStep = 256  // 1 MiB of 4 KiB pages

        let retainNs: Int64?
        var nextPruneNs: Int64 = .min
        var pruneDone = false
        var vacuumDone = false
        var failing = false
        var saidNoIncrementalVacuum = false

        init(retainNs: Int64?) { self.retainNs = retainNs }

        mutating func step(_ db: Database, wallNs: Int64) {
            do {
                // Summaries first: they read the hour through forEachProbe,
                // rows or blocks alike, so the order is only about freshness.
                try db.summarizeHours(endingBy: wallNs - Self.compactAfterNs, maxHours: Self.summarizePerStep)
                try db.compact(hoursEndingBefore: wallNs - Self.compactAfterNs, limit: 1)
                if let retainNs { try retain(db, retainNs: retainNs, wallNs: wallNs) }
                if failing { RecorderLog.line("maintenance works again (summaries, compaction, retention)") }
                failing = false
            } catch {
                if !failing { RecorderLog.line("maintenance failed (\(error)); the probes are safe, retrying every flush") }
                failing = true
            }
        }

        private mutating func retain(_ db: Database, retainNs: Int64, wallNs: Int64) throws {
            if wallNs >= nextPruneNs {
                nextPruneNs = wallNs + Self.pruneEveryNs
                pruneDone = false
                vacuumDone = false
            }
            if !pruneDone {
                pruneDone = try db.pruneStep(sentBefore: wallNs - retainNs).done
                return
            }
            if !vacuumDone {
                guard try db.hasIncrementalVacuum() else {
                    // Freed pages are reused by new probes, so the file stops
                    // growing; giving them back needs one full VACUUM, which
                    // the recorder never runs (it would hold the lock).
                    if !saidNoIncrementalVacuum {
                        RecorderLog.line("this database was made before incremental vacuum: pruned space is reused but not given back; run pingem prune once to convert it")
                        saidNoIncrementalVacuum = true
                    }
                    vacuumDone = true
                    return
                }
                vacuumDone = try db.incrementalVacuumStep(pages: Self.vacuumPagesPerStep) == 0
            }
        }
    }

    static func describe(_ e: EngineEvent) -> String {
        switch e {
        case let .sendErrorsBegan(target, errno):
            return "\(target): sends failing (\(String(cString: strerror(errno)))); probes count as lost"
        case let .sendErrorsEnded(target, n):
            return "\(target): sends work again after \(n) failed probe\(n == 1 ? "" : "s")"
        case let .addressChanged(target, from, to):
            return from == nil ? "\(target): probing \(to.text)" : "\(target): address changed from \(from!.text) to \(to.text)"
        case let .stalled(skipped, seconds):
            return "schedule stalled for \(String(format: "%.1f", seconds)) s (process stopped or machine suspended); skipped \(skipped) slot\(skipped == 1 ? "" : "s"), recorded as no data"
        case let .probe(target, seq, error):
            return "\(target): probe \(seq) " + (error.map { $0 == sendErrorUnresolved ? "not sent (unresolved)" : "send failed (\(String(cString: strerror($0))))" } ?? "sent")
        case let .reply(target, seq, rtt, dup):
            return "\(target): \(dup ? "duplicate reply" : "reply") to probe \(seq), rtt \(String(format: "%.3f", Double(rtt) / 1e6)) ms"
        case let .icmpError(target, seq, family, type, code, reporter):
            return "\(target): ICMP\(family == .v6 ? "v6" : "") error type \(type) code \(code) from \(reporter.text) for probe \(seq)"
        case let .icmpErrorsBegan(target, family, type, code, reporter):
            return "\(target): ICMP\(family == .v6 ? "v6" : "") errors began (type \(type) code \(code) from \(reporter.text)); probes count as lost, each error is stored"
        case let .icmpErrorsEnded(target, n):
            return "\(target): replies again after \(n) ICMP error\(n == 1 ? "" : "s")"
        }
    }
}

func formatDuration(_ ns: Int64) -> String {
    if ns % 1_000_000_000 == 0 { return "\(ns / 1_000_000_000)s" }
    if ns % 1_000_000 == 0 { return "\(ns / 1_000_000)ms" }
    return "\(Double(ns) / 1e9)s"
}

extension WriteBatch {
    /// Drops the oldest probes so that `keeping` remain, with the replies and
    /// ICMP errors of the dropped ones (rows no report could place), and
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
        foreignPackets += other.foreignPackets
        heartbeatNs = max(heartbeatNs, other.heartbeatNs)
    }
}
