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
        subcommands: [Generate.self, Run.self, RecorderCommand.self]
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

    func run() throws {
        guard !FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("\(db) exists already: give a new path, generate never touches an existing database.")
        }
        let o = try generateOptions(targets: targets, days: days, interval: interval, rtt: rtt,
                                    jitter: jitter, loss: loss, seed: seed)
        let database = try Database(path: db, mode: .readWrite)
        let r = try generateHistory(into: database, o) { fraction in
            if isatty(2) == 1 { FileHandle.standardError.write(Data(String(format: "\r%5.1f %%", fraction * 100).utf8)) }
        }
        if isatty(2) == 1 { FileHandle.standardError.write(Data("\r".utf8)) }
        print("\(r.probes) probes (\(r.replies) replies, \(r.lost) lost) in \(String(format: "%.1f", r.seconds)) s: \(Int(Double(r.probes) / r.seconds)) probes/s")
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

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build the histories the figures need and print one table of every figure.")
    @Option(help: "Timed runs of each report (the median is printed).") var runs: Int = 5
    @Option(help: "Minutes of the recorder run at 1000 probes/s next to fping (0 skips it; 1 for a quick look).")
    var recorderMinutes: Double = 10
    @Option(help: "Minutes of the recorder run at 10000 probes/s (0 skips it).")
    var fastMinutes: Double = 2

    func run() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pingem-bench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("day.db").path
        var rows: [(String, String)] = [("machine", machineDescription()),
            ("report history", "10 targets x 24 h at 1 s (864,000 probes), rtt 20 ms, jitter 2 ms, loss 0.5 %, seed 1")]

        let o = try generateOptions(targets: 10, days: 1, interval: "1s", rtt: "20ms", jitter: "2ms", loss: "0.5%", seed: 1)
        var r: GenerateResult
        do {
            let database = try Database(path: path, mode: .readWrite)
            r = try generateHistory(into: database, o)
        }  // closing the last connection checkpoints the WAL into the main file
        let size = fileSize(path) + fileSize(path + "-wal")
        rows.append(("ingest through Store.write (generator included)", "\(Int(Double(r.probes) / r.seconds)) probes/s"))
        rows.append(("database size", "\(size) bytes"))
        rows.append(("bytes per probe (indexes included)", String(format: "%.1f", Double(size) / Double(r.probes))))

        let pingem = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("pingem").path
        for (label, args) in [
            ("pingem report --last 24h (10 targets)", ["report", "--db", path, "--last", "24h", "--format", "json"]),
            ("pingem report --last 24h --epoch 5m (10 targets)", ["report", "--db", path, "--last", "24h", "--epoch", "5m", "--format", "json"]),
            ("pingem report --last 24h --epoch 5m --target bench-1", ["report", "--db", path, "--last", "24h", "--epoch", "5m", "--target", "bench-1", "--format", "json"]),
        ] {
            var times: [Double] = []
            for _ in 0..<max(1, runs) { times.append(try timeProcess(pingem, args)) }
            times.sort()
            rows.append((label, String(format: "%.3f s median (min %.3f, max %.3f, %d runs)", times[times.count / 2], times[0], times[times.count - 1], times.count)))
        }
        if recorderMinutes > 0 {
            rows += try runRecorderBench(rate: 1000, seconds: recorderMinutes * 60, withFping: true).rows
        }
        if fastMinutes > 0 {
            rows += try runRecorderBench(rate: 10000, seconds: fastMinutes * 60, withFping: true).rows
        }
        printTable(rows)
    }
}

func fileSize(_ path: String) -> Int64 {
    (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
}

/// Wall time of one whole process, output discarded.
func timeProcess(_ executable: String, _ arguments: [String]) throws -> Double {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.standardOutput = FileHandle.nullDevice
    let start = ContinuousClock.now
    try p.run()
    p.waitUntilExit()
    let e = (ContinuousClock.now - start).components
    guard p.terminationStatus == 0 else {
        throw ValidationError("\(executable) \(arguments.joined(separator: " ")) exited \(p.terminationStatus).")
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
