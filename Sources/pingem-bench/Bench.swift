// pingem-bench: builds synthetic histories through the real Store and times
// what a user runs against them. Results go to docs/BENCHMARKS.md.
import ArgumentParser
import Foundation
import Reports
import Store

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pingem-bench",
        abstract: "Synthetic histories and timed reports for pingem's benchmark.",
        subcommands: [Generate.self, Run.self, Summarize.self, RecorderCommand.self, UpkeepCommand.self,
                      EventsCommand.self, PathSummariesCommand.self]
    )
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a realistic synthetic history ending now into a new database.")
    @Option(help: "Database to create (must not exist).") var db: String
    @Option(help: "Number of targets.") var targets: Int = 10
    @Option(help: "Days of history.") var days: Double = 1
    @Option(help: "Probe interval.") var interval: String = "1s"
    @Option(help: "Typical RTT.") var rtt: String = "20ms"
    @Option(help: "RTT jitter (standard deviation).") var jitter: String = "2ms"
    @Option(help: "Random loss, e.g. 0.5%.") var loss: String = "0.5%"
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Flag(help: "Leave every probe in plain rows (no compaction into blocks).") var plain = false
    @Flag(help: "Record path rounds too: 12 hops every --path-interval, every --interval while losing.") var paths = false
    @Option(help: "Time between two path rounds of a target (with --paths).") var pathInterval: String = "30s"

    func run() throws {
        guard !FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("\(db) exists already: give a new path, generate never touches an existing database.")
        }
        var o = try generateOptions(targets: targets, days: days, interval: interval, rtt: rtt,
                                    jitter: jitter, loss: loss, seed: seed)
        o.compact = !plain
        if paths {
            do { o.pathIntervalNs = try parseDuration(pathInterval) } catch let e as ReportError { throw ValidationError(e.description) }
        }
        let database = try Database(path: db, mode: .readWrite)
        let r = try generateHistory(into: database, o) { fraction in
            if isatty(2) == 1 { FileHandle.standardError.write(Data(String(format: "\r%5.1f %%", fraction * 100).utf8)) }
        }
        if isatty(2) == 1 { FileHandle.standardError.write(Data("\r".utf8)) }
        if paths { print("\(r.pathProbes) path probes") }
        print("\(r.probes) probes (\(r.replies) replies, \(r.lost) lost) in \(String(format: "%.1f", r.seconds)) s: \(Int(Double(r.probes) / r.seconds)) probes/s")
    }
}

struct Summarize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build the hourly summaries of an existing database again (after their encoding changed).")
    @Option(help: "Database to summarize.") var db: String

    func run() throws {
        let database = try Database(path: db, mode: .readWrite)
        let clock = ContinuousClock()
        let began = clock.now
        try database.deleteAllSummaries()
        let hours = try database.summarizeHours(endingBy: Int64(Date().timeIntervalSince1970 * 1e9) - 1_800_000_000_000, maxHours: .max)
        print("\(hours) hours summarized in \(clock.now - began)")
    }
}

func generateOptions(targets: Int, days: Double, interval: String, rtt: String, jitter: String,
                     loss: String, seed: UInt64) throws -> GenerateOptions {
    guard targets >= 1, days > 0 else { throw ValidationError("--targets and --days must be positive.") }
    let lossText = loss.hasSuffix("%") ? String(loss.dropLast()) : loss
    guard let lossValue = Double(lossText), lossValue >= 0, lossValue < 100 else {
        throw ValidationError("--loss takes a percentage like 0.5%.")
    }
    do {
        return GenerateOptions(
            targets: targets, days: days, intervalNs: try parseDuration(interval),
            rttNs: try parseDuration(rtt), jitterNs: try parseDuration(jitter),
            loss: lossValue / 100, seed: seed, endNs: Int64(Date().timeIntervalSince1970 * 1e9))
    } catch let e as ReportError {
        throw ValidationError(e.description)
    }
}

/// $XDG_CACHE_HOME/pingem-bench, else ~/.cache/pingem-bench.
func defaultCacheFolder() -> String {
    let env = ProcessInfo.processInfo.environment
    if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/pingem-bench" }
    return (env["HOME"] ?? "/tmp") + "/.cache/pingem-bench"
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build the histories the figures need and print one table of every figure.")
    @Option(help: "Timed runs of each report (the median is printed).") var runs: Int = 5
    @Option(help: "Days of the one-target storage history (365: a year, 31.5 million probes).") var yearDays: Double = 365
    @Option(help: ArgumentHelp(
        "Folder for the year-long history (10 targets x 365 d at 1 s, 315 M probes, about 2 GB compacted): made once, reused after.",
        valueName: "folder"))
    var cache: String = defaultCacheFolder()
    @Flag(help: "Skip the year-long history.") var noYear = false

    /// The year-long history: generated into the cache folder the first time
    /// (minutes), reused after; its size and summary size are rows too.
    func yearHistory() throws -> (reports: [(String, [String])], rows: [(String, String)]) {
        if noYear { return ([], []) }
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        // The schema version is in the name: a cache from an older layout is not reused.
        let path = cache + "/year-10x365d-seed1-schema3.db"
        if !FileManager.default.fileExists(atPath: path) {
            print("generating \(path) (10 targets x 365 d at 1 s; minutes, once)")
            let o = try generateOptions(targets: 10, days: 365, interval: "1s", rtt: "20ms", jitter: "2ms", loss: "0.5%", seed: 1)
            let partial = path + ".partial"
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: partial + suffix) }
            do {
                let database = try Database(path: partial, mode: .readWrite)
                let r = try generateHistory(into: database, o)
                print("year: \(r.probes) probes in \(String(format: "%.0f", r.seconds)) s, \(r.summarizedHours) target-hours summarized in \(String(format: "%.0f", r.summarySeconds)) s")
            }
            try FileManager.default.moveItem(atPath: partial, toPath: path)
        }
        let summaryBytes = try Database(path: path, mode: .readOnly).summaryTableBytes()
        let size = fileSize(path) + fileSize(path + "-wal")
        let rows = [
            ("year history: database size", "\(size) bytes"),
            ("year history: summary table", String(format: "%d bytes (%.3f bytes per probe)", summaryBytes, Double(summaryBytes) / 315_360_000)),
        ]
        return ([
            ("pingem report --last 365d --epoch 1d (10 targets, 315 M probes)", ["report", "--db", path, "--last", "365d", "--epoch", "1d", "--format", "json"]),
            ("pingem report --last 365d (10 targets)", ["report", "--db", path, "--last", "365d", "--format", "json"]),
            ("pingem report --last 24h --epoch 5m (10 targets, year db)", ["report", "--db", path, "--last", "24h", "--epoch", "5m", "--format", "json"]),
        ], rows)
    }
    @Option(help: "Minutes of the recorder run at 1000 probes/s next to fping (0 skips it; 1 for a quick look).")
    var recorderMinutes: Double = 10
    @Option(help: "Minutes of the recorder run at 10000 probes/s (0 skips it).")
    var fastMinutes: Double = 2


    func run() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pingem-bench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        print("machine: \(machineDescription())")
        var rows: [(String, String)] = [("machine", machineDescription())]
        func row(_ label: String, _ value: String) {
            rows.append((label, value))
            print("  \(label): \(value)")  // progress; the table follows at the end
        }
        try storageRows(path: dir.appendingPathComponent("year.db").path, row: row)
        let pingem = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("pingem").path
        try dayReportRows(in: dir, pingem: pingem, row: row)
        // Reports over a year of 10 targets (315 M probes): hour summaries.
        let year = try yearHistory()
        for (label, args) in year.reports {
            row("year of 10 targets: \(label)", try medianTime(pingem, args))
        }
        for (label, value) in year.rows { row(label, value) }
        if recorderMinutes > 0 {
            for (label, value) in try runRecorderBench(rate: 1000, seconds: recorderMinutes * 60, withFping: true).rows { row(label, value) }
        }
        if fastMinutes > 0 {
            for (label, value) in try runRecorderBench(rate: 10000, seconds: fastMinutes * 60, withFping: true).rows { row(label, value) }
        }
        print("")
        printTable(rows)
    }

    /// Storage: a year of one target at 1 s, compacted as the recorder does;
    /// its size, a full read of it and the block decoder alone.
    func storageRows(path yearPath: String, row: (String, String) -> Void) throws {
        print("storage history: 1 target x \(yearDays) d at 1 s, rtt 20 ms, jitter 2 ms, loss 0.5 %, seed 1, compacted as it goes")
        let yo = try generateOptions(targets: 1, days: yearDays, interval: "1s", rtt: "20ms", jitter: "2ms", loss: "0.5%", seed: 1)
        var yr: GenerateResult
        do {
            let database = try Database(path: yearPath, mode: .readWrite)
            yr = try generateHistory(into: database, yo)
        }  // closing the last connection checkpoints the WAL into the main file
        let yearSize = fileSize(yearPath) + fileSize(yearPath + "-wal")
        row("year: probes", "\(yr.probes) (\(yr.replies) replies, \(yr.lost) lost)")
        row("year: generate + compact through Store", "\(Int(Double(yr.probes) / yr.seconds)) probes/s")
        row("year: database size", "\(yearSize) bytes")
        row("year: bytes per probe on disk (indexes included)", String(format: "%.2f", Double(yearSize) / Double(yr.probes)))
        do {
            let database = try Database(path: yearPath, mode: .readOnly)
            var count = 0
            var firstHour: [ProbeRecord] = []
            let clock = ContinuousClock()
            let started = clock.now
            try database.forEachProbe(from: .min, to: .max, targets: nil) { probe in
                count += 1
                if firstHour.count < 3600 { firstHour.append(probe) }
            }
            let elapsed = seconds(clock.now - started)
            row("year: Database.forEachProbe of every probe (read + decode + merge)", String(format: "%.1f M probes/s (%.2f s)", Double(count) / elapsed / 1e6, elapsed))
            row("BlockCodec.decode alone (one core, an hour's block)", try decodeRate(firstHour))
        }
        try? FileManager.default.removeItem(atPath: yearPath)
    }

    /// BlockCodec.decode of `probes`' block, 2000 times over.
    func decodeRate(_ probes: [ProbeRecord]) throws -> String {
        let block = BlockCodec.encode(probes)
        var decoded: [ProbeRecord] = []
        decoded.reserveCapacity(probes.count)
        let clock = ContinuousClock()
        let decodeStart = clock.now
        let rounds = 2000
        for _ in 0..<rounds {
            decoded.removeAll(keepingCapacity: true)
            try block.withUnsafeBytes { try BlockCodec.decode($0, targetID: 1, into: &decoded) }
        }
        let decodeSeconds = seconds(clock.now - decodeStart)
        return String(format: "%.0f M probes/s (%d bytes for %d probes)", Double(rounds * probes.count) / decodeSeconds / 1e6, block.count, probes.count)
    }

    /// Reports: 24 h of 10 targets, compacted (as a recorder leaves it) and plain.
    func dayReportRows(in dir: URL, pingem: String, row: (String, String) -> Void) throws {
        print("report history: 10 targets x 24 h at 1 s (864,000 probes), rtt 20 ms, jitter 2 ms, loss 0.5 %, seed 1")
        for compact in [false, true] {
            let kind = compact ? "blocks" : "plain rows"
            let path = dir.appendingPathComponent(compact ? "day.db" : "day-plain.db").path
            var o = try generateOptions(targets: 10, days: 1, interval: "1s", rtt: "20ms", jitter: "2ms", loss: "0.5%", seed: 1)
            o.compact = compact
            var r: GenerateResult
            do {
                let database = try Database(path: path, mode: .readWrite)
                r = try generateHistory(into: database, o)
            }
            let size = fileSize(path) + fileSize(path + "-wal")
            if !compact { row("day, \(kind): ingest through Store.write (generator included)", "\(Int(Double(r.probes) / r.seconds)) probes/s") }
            if compact { row("day: hourly summaries, building them", String(format: "%d hours of 10 targets in %.2f s", r.summarizedHours, r.summarySeconds)) }
            row("day, \(kind): bytes per probe (indexes included)", String(format: "%.1f (%d bytes)", Double(size) / Double(r.probes), size))
            for (label, args) in [
                ("pingem report --last 24h (10 targets)", ["report", "--db", path, "--last", "24h", "--format", "json"]),
                ("pingem report --last 24h --epoch 5m (10 targets)", ["report", "--db", path, "--last", "24h", "--epoch", "5m", "--format", "json"]),
                ("pingem report --last 24h --epoch 5m --target bench-1", ["report", "--db", path, "--last", "24h", "--epoch", "5m", "--target", "bench-1", "--format", "json"]),
                ("pingem report --last 24h --epoch 1h (10 targets)", ["report", "--db", path, "--last", "24h", "--epoch", "1h", "--format", "json"]),
                ("pingem report --last 24h --epoch 1h --exact (10 targets)", ["report", "--db", path, "--last", "24h", "--epoch", "1h", "--exact", "--format", "json"]),
            ] {
                row("day, \(kind): \(label)", try medianTime(pingem, args))
            }
        }
    }

    /// `runs` timed runs of one pingem command: the median, min and max.
    func medianTime(_ pingem: String, _ args: [String]) throws -> String {
        var times: [Double] = []
        for _ in 0..<max(1, runs) { times.append(try timeProcess(pingem, args)) }
        times.sort()
        return String(format: "%.3f s median (min %.3f, max %.3f, %d runs)", times[times.count / 2], times[0], times[times.count - 1], times.count)
    }
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

func fileSize(_ path: String) -> Int64 {
    (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
}

/// Wall time of one whole process, output discarded. Spawned and reaped
/// directly (posix_spawn, waitpid): Foundation's Process.waitUntilExit polls,
/// which rounded every figure up to a multiple of about 50 ms.
func timeProcess(_ executable: String, _ arguments: [String]) throws -> Double {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for arg in argv { free(arg) } }
    var pid: pid_t = 0
    let start = ContinuousClock.now
    let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
    guard spawned == 0 else { throw ValidationError("cannot start \(executable): \(String(cString: strerror(spawned))).") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let e = (ContinuousClock.now - start).components
    // Exited (low 7 bits 0) with status 0.
    guard status & 0x7F == 0, (status >> 8) & 0xFF == 0 else {
        throw ValidationError("\(executable) \(arguments.joined(separator: " ")) failed (wait status \(status)).")
    }
    return Double(e.seconds) + Double(e.attoseconds) / 1e18
}

func machineDescription() -> String {
    var u = utsname()
    uname(&u)
    let release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
        .split(separator: "\n").first { $0.hasPrefix("model name") }?
        .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
    return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, Linux \(release)"
}
