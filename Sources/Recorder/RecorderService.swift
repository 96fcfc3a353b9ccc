// `pingem record`: opens the sockets and the database (RecorderSetup),
// then runs until SIGINT or SIGTERM (SIGHUP re-reads --targets-file: Reload):
//   Sender       - sleeps to each slot on the monotonic clock and sends;
//   Receiver     - polls the sockets and matches what comes back;
//   ResolverLoop - re-resolves names every few minutes and after failures;
//   UpkeepLoop   - summaries, compaction and retention, on a connection
//                  of its own, in short transactions that let the writer
//                  go first;
//   Writer       - the main thread: commits one batch per --flush period
//                  (and the heartbeat), and waits for the signal.
// At the signal the threads stop before the last batch is cut, so that
// every probe sent and every reply received is in it.

import Foundation
import Glibc
import Store
import Synchronization

public struct RecordOptions: Sendable {
    /// The targets of the command line, as given: probed for the whole
    /// session; `probedTargets` puts the global options under them.
    public var targets: [TargetSpec]
    /// -4, -6, --source, --interface, --tos: for every target that does
    /// not give its own.
    public var probeDefaults: ProbeOptions
    /// --targets-file, re-read on SIGHUP, and its targets as read at start.
    public var targetsFile: String?
    public var fileTargets: [TargetSpec] = []
    /// What the session starts with: the command line's, then the file's.
    public var startTargets: [TargetSpec] { targets + fileTargets }
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
    /// --path-interval: each target's path is probed in a round this often
    /// (and every --interval while it loses probes); 0: never.
    public var pathIntervalNs: Int64 = RecordOptions.defaultPathIntervalNs
    public static let defaultPathIntervalNs: Int64 = 30_000_000_000
    public init(targets: [TargetSpec], intervalNs: Int64, payloadSize: Int, flushNs: Int64,
                databasePath: String, verbose: Bool, version: String, user: String? = nil,
                umask: mode_t = 0o077, maxHeldProbes: Int = RecordOptions.defaultMaxHeldProbes,
                resolveEveryNs: Int64 = RecordOptions.defaultResolveEveryNs, retainNs: Int64? = nil,
                probeDefaults: ProbeOptions = ProbeOptions(), targetsFile: String? = nil, fileTargets: [TargetSpec] = []) {
        self.retainNs = retainNs
        self.probeDefaults = probeDefaults
        self.targetsFile = targetsFile; self.fileTargets = fileTargets
        self.targets = targets; self.intervalNs = intervalNs; self.payloadSize = payloadSize
        self.flushNs = flushNs; self.databasePath = databasePath; self.verbose = verbose
        self.version = version; self.user = user; self.umask = umask; self.maxHeldProbes = maxHeldProbes
        self.resolveEveryNs = resolveEveryNs
    }

    /// The targets as probed: each one's options over the global ones.
    public func probedTargets() throws -> [TargetSpec] {
        try startTargets.map { try $0.withDefaults(probeDefaults) }
    }

    /// The distinct paths the targets go by, in order of first use, and
    /// each target's index into them.
    func paths(of targets: [TargetSpec]) -> (paths: [ProbePath], ofTarget: [Int]) {
        var paths: [ProbePath] = []
        let indices = targets.map { spec in
            if let known = paths.firstIndex(of: spec.options.path) { return known }
            paths.append(spec.options.path)
            return paths.count - 1
        }
        return (paths, indices)
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

    /// Validates options; throws a one-sentence RecorderError.
    public static func validate(_ o: RecordOptions) throws {
        try validateTargets(o.startTargets)
        if o.intervalNs < minimumIntervalNs {
            throw RecorderError("--interval must be at least 10ms.")
        }
        if o.payloadSize < ProbePayload.minimumSize || o.payloadSize > 65_000 {
            throw RecorderError("--size must be between \(ProbePayload.minimumSize) (what a probe's own fields need) and 65000 bytes.")
        }
        if o.pathIntervalNs != 0 && o.pathIntervalNs < 1_000_000_000 {
            throw RecorderError("--path-interval must be 0 (no path rounds) or at least 1s.")
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
        try o.probeDefaults.checkGlobal()
        _ = try o.probedTargets()
    }

    /// The rules a whole target set keeps, at start and at every reload.
    static func validateTargets(_ targets: [TargetSpec]) throws {
        if targets.isEmpty {
            throw RecorderError("no target given: name at least one host, e.g. pingem record 192.0.2.1 example.com.")
        }
        let names = targets.map(\.name)
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
        var stop = SignalStop(clock: clock)
        stop.block()
        let opened = try OpenedRecorder.open(options)
        let recording = try Recording.begin(options, opened: opened, clock: clock)
        let engine = recording.engine
        RecorderLog.line("recording \(recording.targets.count) target\(recording.targets.count == 1 ? "" : "s") every "
            + "\(formatDuration(options.intervalNs)) into \(options.databasePath) "
            + "(\(opened.transport.kind.rawValue) socket, session \(engine.sessionID), pid \(getpid()))")

        let threads = RecorderThreads()
        let sender = Sender(engine: engine, clock: clock)
        let receiver = Receiver(engine: engine, transport: opened.transport, clock: clock)
        let roster = TargetRoster(recording.specs, resolved: recording.initial.map { $0 != nil })
        let resolver = ResolverLoop(roster: roster, everyNs: options.resolveEveryNs,
                                    families: opened.transport.families, engine: engine, clock: clock,
                                    log: { RecorderLog.line($0) })
        threads.spawn("sender") { RecorderThreads.preferRealtime(); sender.run(threads) }
        threads.spawn("receiver") { RecorderThreads.preferRealtime(); receiver.run(threads) }
        threads.spawn("resolver", joined: false) { resolver.run(threads) }
        let turn = WriteTurn()
        let upkeep = UpkeepLoop(databasePath: options.databasePath, retainNs: options.retainNs, periodNs: options.flushNs,
                                turn: turn, clock: clock, log: { RecorderLog.line($0) })
        // Waited for after the last batch: the stop must not wait for a read
        // of the upkeep's (an hour being summarized) to write it.
        let upkeepDone = DispatchSemaphore(value: 0)
        threads.spawn("upkeep", joined: false) {
            upkeep.run(threads)
            upkeepDone.signal()
        }

        // The main thread is the writer: it commits one batch per --flush
        // period and wakes early only for a signal (sigtimedwait): SIGINT
        // and SIGTERM stop it, SIGHUP reloads the targets file between
        // two batches.
        let db = opened.db
        let reload = TargetsReload(options: options, db: db, engine: engine, roster: roster,
                                   families: opened.transport.families, paths: recording.paths,
                                   log: { RecorderLog.line($0) })
        stop.onHangup = reload.reload
        var writer = Writer(store: db, source: engine, clock: clock, sessionID: engine.sessionID,
                            flushNs: options.flushNs, maxHeldProbes: options.maxHeldProbes,
                            databasePath: options.databasePath, matchWindowNs: engine.config.matchWindowNs,
                            turn: turn, log: { RecorderLog.line($0) })
        let received = writer.run(until: &stop)

        // Stopped in this order so that every probe sent and every reply
        // received is in the last batch. The session ends once the sender
        // has stopped: a stamp taken before let a probe due in between be
        // sent after its session's end, outside every session (LongReader
        // saw a report of the session one probe short on a loaded machine).
        RecorderLog.line("received \(received); writing everything and stopping")
        threads.stop()  // sender and receiver are done: nothing more can arrive
        let stopWall = clock.wallNs()
        try writer.finish()
        try db.endSession(engine.sessionID, stoppedNs: stopWall)
        upkeepDone.wait()
        opened.transport.close()
        let (probes, replies) = engine.counts
        RecorderLog.line("stopped: \(probes) probes sent, \(replies) replies matched in this session")
        withExtendedLifetime(opened.lock) {}
    }

    static func describe(_ e: EngineEvent) -> String {
        switch e {
        case let .sendErrorsBegan(target, errno):
            return errno == sendErrorUnresolved
                ? "\(target): not probed while its name does not resolve; probes count as lost"
                : "\(target): sends failing (\(String(cString: strerror(errno)))); probes count as lost"
        case let .sendErrorsEnded(target, n):
            return "\(target): sends work again after \(n) failed probe\(n == 1 ? "" : "s")"
        case let .addressChanged(target, from, to):
            return from == nil ? "\(target): probing \(to.text)" : "\(target): address changed from \(from!.text) to \(to.text)"
        case let .stalled(skipped, seconds):
            return "schedule stalled for \(String(format: "%.1f", seconds)) s (process stopped or machine suspended); skipped \(skipped) slot\(skipped == 1 ? "" : "s"), recorded as no data"
        case let .probe(target, seq, error):
            return "\(target): probe \(seq) " + (error.map { $0 == sendErrorUnresolved ? "not sent (its name does not resolve)" : "send failed (\(String(cString: strerror($0))))" } ?? "sent")
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
