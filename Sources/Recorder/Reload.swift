// SIGHUP: the recorder re-reads --targets-file and changes its running set
// to match, in the same session. Targets are compared as whole TargetSpecs:
// a line that changes in any way is a removed target plus an added one.
// Added targets start on their next slot; removed ones stop, and their
// coverage ends there (no data, never loss); unchanged ones are not touched,
// so their slots and sequence numbers go on as before. A file that is not
// valid as a whole changes nothing.

import Store
import Synchronization

/// The targets a running recorder knows, by engine index, shared by the
/// reload (main thread) and the resolver thread.
final class TargetRoster: Sendable {
    struct Entry: Sendable, Equatable {
        var spec: TargetSpec
        var active: Bool
        /// Whether its last (re)add resolved it: the resolver retries soon if not.
        var resolved: Bool
        /// Bumped at each (re)add, so the resolver restarts its schedule.
        var generation: Int
    }

    private let entries: Mutex<[Entry]>

    init(_ specs: [TargetSpec], resolved: [Bool]) {
        entries = Mutex(zip(specs, resolved).map { Entry(spec: $0, active: true, resolved: $1, generation: 0) })
    }

    var snapshot: [Entry] { entries.withLock { $0 } }

    func index(ofActive name: String) -> Int? {
        entries.withLock { $0.firstIndex { $0.active && $0.spec.name == name } }
    }

    /// Records the target the engine (re)added at `index`.
    func added(_ spec: TargetSpec, at index: Int, resolved: Bool) {
        entries.withLock { e in
            if index == e.count {
                e.append(Entry(spec: spec, active: true, resolved: resolved, generation: 0))
            } else {
                e[index] = Entry(spec: spec, active: true, resolved: resolved, generation: e[index].generation + 1)
            }
        }
    }

    func removed(at index: Int) {
        entries.withLock { $0[index].active = false }
    }
}

/// Where a target added while recording goes in the interval: the middle of
/// the widest stretch between the offsets taken (the interval wraps around),
/// the earliest of equal ones. The targets already probed keep their offsets,
/// hence their slots, and the new one lies as far from its neighbours as
/// the set allows.
func offsetInLargestGap(_ taken: [Int64], intervalNs: Int64) -> Int64 {
    let sorted = Set(taken).sorted()
    guard let first = sorted.first, let last = sorted.last else { return 0 }
    var best = (start: last, width: first + intervalNs - last)
    for (a, b) in zip(sorted, sorted.dropFirst()) where b - a > best.width || (b - a == best.width && a < best.start) {
        best = (a, b - a)
    }
    return (best.start + best.width / 2) % intervalNs
}

/// The reload itself, on the main thread: it owns the database (target ids
/// of new names) and runs between two batches. A new name is resolved here,
/// before its first slot, as at start; while getaddrinfo waits, the sender
/// and receiver go on and the next batch is only later, never lost.
final class TargetsReload {
    let path: String?
    /// The command line's targets: never removed by a reload.
    let fixed: [TargetSpec]
    private(set) var fileTargets: [TargetSpec]
    let db: Database
    let engine: ProbeEngine
    let roster: TargetRoster
    let families: Set<IPFamily>
    /// -4, -6, --source, --interface, --tos, under each line's own options.
    let probeDefaults: ProbeOptions
    /// The paths (source, interface, TOS) the sockets were opened for at
    /// start: after the switch to --user no new raw socket can be opened.
    let paths: [ProbePath]
    let log: (String) -> Void

    init(options: RecordOptions, db: Database, engine: ProbeEngine, roster: TargetRoster,
         families: Set<IPFamily>, paths: [ProbePath], log: @escaping (String) -> Void) {
        path = options.targetsFile; fixed = options.targets; fileTargets = options.fileTargets
        probeDefaults = options.probeDefaults; self.paths = paths
        self.db = db; self.engine = engine; self.roster = roster; self.families = families; self.log = log
    }

    /// A line's target as probed, and the index of its path; throws when it
    /// needs a socket the start did not open.
    private func probed(_ spec: TargetSpec) throws -> (TargetSpec, Int) {
        let probed = try spec.withDefaults(probeDefaults)
        guard let path = paths.firstIndex(of: probed.options.path) else {
            throw RecorderError("target '\(spec.name)' needs a source, interface or TOS no target had at start, so a socket this recorder cannot open any more; restart it to probe that target.")
        }
        return (probed, path)
    }

    func reload() {
        guard let path else {
            log("received SIGHUP; nothing to reload: this recorder was started without --targets-file")
            return
        }
        let specs: [TargetSpec]
        var records: [RecorderTarget] = []
        var probedSpecs: [TargetSpec] = []
        do {
            specs = try TargetsFile.read(path)
            try RecorderService.validateTargets(fixed + specs)
            // Every id before any change: a database that refuses one
            // leaves the running set as it was.
            for spec in specs where !fileTargets.contains(spec) {
                let (probed, pathIndex) = try probed(spec)
                let t = try db.target(name: spec.name, host: spec.host)
                records.append(RecorderTarget(id: t.id, name: t.name, host: spec.host, path: pathIndex))
                probedSpecs.append(probed)
            }
        } catch {
            log("reload of \(path) refused, the \(fixed.count + fileTargets.count) targets probed go on unchanged: \(error)")
            return
        }
        let removed = fileTargets.filter { !specs.contains($0) }
        let added = specs.filter { !fileTargets.contains($0) }
        for spec in removed {
            guard let i = roster.index(ofActive: spec.name) else { continue }
            engine.remove(target: i)
            roster.removed(at: i)
        }
        let addresses = probedSpecs.map { Recording.resolveFirst($0, families: families) }
        for ((spec, record), address) in zip(zip(probedSpecs, records), addresses) {
            let i = engine.add(record, probedAs: spec.options)
            if let address { engine.setAddress(address, forTarget: i) } else { engine.clearAddress(forTarget: i) }
            roster.added(spec, at: i, resolved: address != nil)
        }
        fileTargets = specs
        var parts: [String] = []
        if !added.isEmpty { parts.append("added " + added.map(\.name).joined(separator: ", ")) }
        if !removed.isEmpty { parts.append("removed " + removed.map(\.name).joined(separator: ", ")) }
        parts.append("\(specs.count - added.count) unchanged")
        log("reloaded \(path): " + parts.joined(separator: "; "))
    }
}
