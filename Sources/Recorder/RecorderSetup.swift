// What `pingem record` does before the first probe: the files and sockets
// (with their rights, then the switch to --user), and the session with its
// resolved targets and schedule.

import Foundation
import Glibc
import Store

/// The sockets, the lock and the database, opened with the rights the
/// process started with; after `open` it runs as --user.
struct OpenedRecorder {
    let transport: any ICMPTransport
    /// Held (not read) until the recorder returns.
    let lock: RecorderLock
    let db: Database

    static func open(_ options: RecordOptions) throws -> OpenedRecorder {
        // Before anything is created: the database, its folder, the lock file.
        Glibc.umask(options.umask)
        let permissions = 0o666 & ~options.umask
        // Look the user up while /etc is surely readable.
        let account = try options.user.map(Account.init(name:))

        let paths = options.paths(of: try options.probedTargets()).paths
        let transport = try ICMPSockets.open(families: [.v4, .v6], paths: paths, largestPayload: options.payloadSize)
        let lock = try RecorderLock.acquire(databasePath: options.databasePath, permissions: permissions)
        let db: Database
        do {
            db = try Database(path: options.databasePath, mode: .readWrite, permissions: permissions)
            try db.limitPageCache(kibibytes: 512)
            try db.limitWALSize(bytes: 16 << 20)
            // The upkeep checkpoints (UpkeepLoop); 40 MB only if it cannot.
            try db.leaveCheckpointsToOthers(safetyPages: 10_000)
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
        return OpenedRecorder(transport: transport, lock: lock, db: db)
    }
}

/// The session in the database and the engine that probes for it.
struct Recording {
    /// The targets as probed (the global options under their own).
    let specs: [TargetSpec]
    /// The paths the sockets were opened for (OpenedRecorder), by index.
    let paths: [ProbePath]
    let targets: [RecorderTarget]
    /// What the start resolved (nil: failed), in target order.
    let initial: [IPAddress?]
    let engine: ProbeEngine

    static func begin(_ options: RecordOptions, opened: OpenedRecorder, clock: any RecorderClock) throws -> Recording {
        let transport = opened.transport, db = opened.db
        // Resolve every name before the first probe, so a start never shows
        // as a burst of "unresolved" loss.
        let specs = try options.probedTargets()
        let initial = specs.map { resolveFirst($0, families: transport.families) }
        let (paths, pathOf) = options.paths(of: specs)
        var targets: [RecorderTarget] = []
        for (i, spec) in specs.enumerated() {
            let t = try db.target(name: spec.name, host: spec.host)
            targets.append(RecorderTarget(id: t.id, name: t.name, host: spec.host, path: pathOf[i]))
        }

        // The schedule starts at the next whole multiple of the interval on the
        // wall clock, so with 1 s probes every 5 m epoch holds exactly 300 slots.
        let monoNow = clock.monotonicNs()
        let wallNow = clock.wallNs()
        // At least 100 ms ahead, so the setup below never makes the first
        // slots late.
        var untilAligned = options.intervalNs - wallNow % options.intervalNs
        while untilAligned < 100_000_000 { untilAligned += options.intervalNs }

        var generator = SystemRandomNumberGenerator()  // getrandom(2)
        let runID = generator.next()
        let sessionID = try db.beginSession(
            NewSession(runID: runID, pid: getpid(), hostname: ProcessInfo.processInfo.hostName, version: options.version,
                       socketKind: transport.kind.rawValue, intervalNs: options.intervalNs,
                       payloadBytes: options.payloadSize, startedNs: wallNow + untilAligned),
            targets: targets.enumerated().map { i, t in
                let o = specs[i].options
                return SessionTargetRecord(sessionID: 0, targetID: t.id,
                                           offsetNs: RecorderService.offset(index: i, count: targets.count, intervalNs: options.intervalNs),
                                           source: o.source?.text, interface: o.interface, tos: o.tos.map(Int.init))
            })

        let engine = ProbeEngine(
            config: EngineConfig(runID: runID, intervalNs: options.intervalNs, payloadSize: options.payloadSize,
                                 pathIntervalNs: options.pathIntervalNs),
            sessionID: sessionID, targets: targets, transport: transport, clock: clock,
            startMono: monoNow + untilAligned, verbose: options.verbose)
        for (i, a) in initial.enumerated() { if let a { engine.setAddress(a, forTarget: i) } }
        return Recording(specs: specs, paths: paths, targets: targets, initial: initial, engine: engine)
    }

    /// Resolves a target before its first probe (at start, or added by a
    /// reload) and logs the answer; nil: it did not resolve.
    static func resolveFirst(_ spec: TargetSpec, families: Set<IPFamily>) -> IPAddress? {
        switch resolve(host: spec.host, families: spec.families(of: families)) {
        case .resolved(let a):
            // The family too: without -4/-6 the resolver chose it.
            if spec.host != a.text { RecorderLog.line("\(spec.name): \(spec.host) resolved to \(a.text) (IPv\(a.family.rawValue))") }
            return a
        case .failed(let why, let nameGone):
            RecorderLog.line(spec.doesNotResolve(why, nameGone: nameGone, atStart: true,
                                                 then: "its probes count as lost until it resolves"))
            return nil
        case .lacks(let family):
            RecorderLog.line(spec.lacks(family, then: "its probes count as lost until it has one"))
            return nil
        }
    }
}
