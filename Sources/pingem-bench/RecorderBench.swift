// The recorder's load benchmark: `pingem record` probing 100 loopback
// addresses (127.0.0.1 to 127.0.0.100, answered by the kernel itself) next
// to fping doing the same in the same run, both sampled from /proc:
// CPU time (utime + stime, every thread), resident memory (VmRSS, VmHWM).
// After the run the database says how late each probe left its slot.
//
// CPU time, not wall time: other builds share this machine, and a process's
// CPU time barely depends on them. Lateness does (a busy machine delays a
// waking thread), so it is reported with the load average of the run.
//
// Only loopback addresses are ever probed.

import ArgumentParser
import Foundation
import Store

struct RecorderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recorder",
        abstract: "Run pingem record and fping side by side on 100 loopback targets; print CPU, memory and lateness.")
    @Option(help: "Minutes of the main run (fractions allowed).") var minutes: Double = 10
    @Option(help: "Probes per second over the 100 targets: 1000 (100 ms) or 10000 (10 ms).") var rate: Int = 1000
    @Flag(help: "Do not run fping next to pingem.") var noFping = false

    func validate() throws {
        guard rate == 1000 || rate == 10000 else { throw ValidationError("--rate is 1000 or 10000.") }
        guard minutes > 0 else { throw ValidationError("--minutes must be positive.") }
    }

    func run() throws {
        let result = try runRecorderBench(rate: rate, seconds: minutes * 60, withFping: !noFping)
        printTable([("machine", machineDescription())] + result.rows)
    }
}

/// What one side-by-side run measured.
struct RecorderBenchResult {
    var rows: [(String, String)] = []
}

/// utime + stime (seconds, all threads) and memory (kB) of a live process.
struct ProcessSample {
    var cpuSeconds: Double
    var rssKB: Int
    var hwmKB: Int
    /// VmRSS split: private memory (heap, rings, stacks) and pages of mapped
    /// files (the binary and shared libraries, shared with every process
    /// that maps them).
    var anonKB: Int
    var fileKB: Int

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// nil once the process is gone.
    static func read(_ pid: Int32) -> ProcessSample? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after "comm)": state is field 3, utime 14, stime 15 (proc(5)).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        func kB(_ key: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(key) } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return ProcessSample(cpuSeconds: (utime + stime) / ticksPerSecond, rssKB: kB("VmRSS:"), hwmKB: kB("VmHWM:"),
                             anonKB: kB("RssAnon:"), fileKB: kB("RssFile:"))
    }
}

/// The 1-minute load average, as a hint of how busy the machine was.
func loadAverage() -> String {
    ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
}

func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for folder in path.split(separator: ":") + ["/usr/sbin", "/usr/bin"] {
        let candidate = "\(folder)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// Lateness of every probe of a session, slots placed as the reliability
/// tests place them: the slot a send time falls in is only an upper bound
/// (a send late by more than an interval lands in the next slot's window),
/// so walking back from the last probe, each probe's slot is at most one
/// less than the next one's. Missed slots are the holes that remain, plus
/// the slots due before the stop that were never sent.
struct Lateness {
    var probes = 0
    var missed: Int64 = 0
    var sorted: [Int64] = []

    init(sentTimes: [Int64: [Int64]], offsets: [Int64: Int64], startedNs: Int64, intervalNs: Int64, lastDueNs: Int64) {
        for (target, sends) in sentTimes {
            guard let offset = offsets[target] else { continue }
            var next = Int64.max
            var late: [Int64] = []
            late.reserveCapacity(sends.count)
            var slots: [Int64] = []
            for sent in sends.reversed() {
                let since = sent - startedNs - offset
                let bound = since >= 0 ? since / intervalNs : -1
                let slot = next == .max ? bound : min(bound, next - 1)
                late.append(since - slot * intervalNs)
                slots.append(slot)
                next = slot
            }
            sorted += late
            probes += sends.count
            // Slots 0 ... due-1 were due; each one without a probe is missed.
            let dueSince = lastDueNs - startedNs - offset
            let due = dueSince < 0 ? 0 : dueSince / intervalNs + 1
            missed += max(0, due - Int64(Set(slots.filter { $0 >= 0 && $0 < due }).count))
        }
        sorted.sort()
    }

    /// Nearest rank, as the reports compute percentiles.
    func percentile(_ p: Double) -> Int64 {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[max(0, min(sorted.count - 1, rank - 1))]
    }
}

func runRecorderBench(rate: Int, seconds: Double, withFping: Bool) throws -> RecorderBenchResult {
    let intervalMs = rate == 1000 ? 100 : 10
    let targets = (1...100).map { "127.0.0.\($0)" }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pingem-bench-rec-\(getpid())-\(rate)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let db = dir.appendingPathComponent("rec.db").path
    let pingem = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("pingem").path
    var result = RecorderBenchResult()

    // fping 5.1 keeps every probe's sequence number for 10 s in a map of
    // 65,536: above about 6,500 probes/s it exits with "not enough sequence
    // numbers available", so the 10,000/s run is pingem's alone.
    let fpingCanKeepUp = rate <= 6_000
    var fpingNote: String? = nil
    let fping = withFping && fpingCanKeepUp ? findExecutable("fping") : nil
    if withFping && !fpingCanKeepUp {
        fpingNote = "not run: fping 5.1 cannot send 10,000 probes/s (its 65,536 sequence numbers last 10 s each)"
    } else if withFping && fping == nil {
        print("fping is not installed, so there is no comparison: install it with `apt-get install -y fping` and run again.")
    }

    let recordLog = dir.appendingPathComponent("record.log").path
    let recorder = try startProcess(pingem, ["record"] + targets + ["--interval", "\(intervalMs)ms", "--db", db], log: recordLog)
    // Which build is measured: the shared Swift runtime's pages count in
    // the recorder's RSS, a linked-in one's mostly do not (README).
    usleep(200_000)
    let maps = (try? String(contentsOfFile: "/proc/\(recorder.processIdentifier)/maps", encoding: .utf8)) ?? ""
    let linkage = maps.contains("libswiftCore.so")
        ? "shared Swift runtime (built without --static-swift-stdlib)"
        : "Swift runtime linked in (--static-swift-stdlib)"

    // fping 5.1 spaces its sends by -i (default 10 ms: 100 packets/s over
    // all targets), so -i must allow the rate; 0.5 ms is the largest that
    // keeps up with 1000/s here (1 ms reaches only about 650/s). It prints
    // a line per reply even with -q in loop mode: to /dev/null.
    let fpingLog = dir.appendingPathComponent("fping.log").path
    let pinger = try fping.map { try startProcess($0, ["-l", "-p", "\(intervalMs)", "-i", "0.5", "-q"] + targets, log: fpingLog) }

    let samples: RunSamples
    do {
        samples = try RunSamples.take(recorder: recorder, fping: pinger, seconds: seconds)
    } catch {
        throw ValidationError("pingem record exited early: \((try? String(contentsOfFile: recordLog, encoding: .utf8)) ?? "")")
    }
    recorder.interrupt()
    pinger?.interrupt()
    recorder.waitUntilExit()
    pinger?.waitUntilExit()

    let stored = try StoredRun.read(db, until: samples.lastWall)
    let label = "\(rate) probes/s (100 targets at \(intervalMs) ms)"
    result.rows.append(("\(label): run", String(format: "%.0f s, load average at the end %@", seconds, samples.load)))
    result.rows.append(("  pingem binary", "\(pingem): \(linkage)"))
    if let fpingNote { result.rows.append(("  fping", fpingNote)) }
    result.rows += stored.rows(samples: samples)
    if let fping, let fs = samples.fping {
        result.rows += fpingRows(fping, fs, peakKB: samples.peakFpingRSS, log: fpingLog, intervalMs: intervalMs,
                                 pingemPer1000: stored.cpuPer1000(samples))
    }
    result.rows += stored.latenessRows(samples: samples)
    return result
}

/// Starts a program with its stdout discarded and its stderr into `log`.
func startProcess(_ path: String, _ arguments: [String], log: String) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    p.standardOutput = FileHandle.nullDevice
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    p.standardError = FileHandle(forWritingAtPath: log)!
    try p.run()
    return p
}

/// The samples of one run, taken once a second from /proc.
struct RunSamples {
    var pingem: ProcessSample? = nil
    var fping: ProcessSample? = nil
    /// The first sample after a minute (or halfway): does memory grow?
    var early: ProcessSample? = nil
    var earlyAt: Double = 0
    var peakRSS = 0, peakFpingRSS = 0
    /// Wall clock at the last sample: probes sent by then are the ones
    /// the CPU time was spent on.
    var lastWall: Int64 = 0
    var load = ""

    /// Throws when the recorder exits before the run's end.
    static func take(recorder: Process, fping: Process?, seconds: Double) throws -> RunSamples {
        struct ExitedEarly: Error {}
        let start = ContinuousClock.now
        var s = RunSamples()
        s.earlyAt = min(60, seconds / 2)
        while true {
            let elapsed = (ContinuousClock.now - start).components
            let t = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
            guard let sample = ProcessSample.read(recorder.processIdentifier) else {
                fping?.interrupt()
                throw ExitedEarly()
            }
            s.pingem = sample
            s.peakRSS = max(s.peakRSS, sample.rssKB)
            if s.early == nil && t >= s.earlyAt { s.early = sample }
            if let fping, let f = ProcessSample.read(fping.processIdentifier) {
                s.fping = f
                s.peakFpingRSS = max(s.peakFpingRSS, f.rssKB)
            }
            s.lastWall = Int64(Date().timeIntervalSince1970 * 1e9)
            if t >= seconds { break }
            usleep(UInt32(min(1.0, seconds - t) * 1_000_000))
        }
        s.load = loadAverage()
        return s
    }
}

/// What pingem stored in the run's session.
struct StoredRun {
    var lateness: Lateness
    var probesUntilSample = 0
    var failed = 0
    var answered = 0
    var lateReplies = 0
    var gaps = 0

    static func read(_ path: String, until lastWall: Int64) throws -> StoredRun {
        let database = try Database(path: path, mode: .readOnly)
        guard let session = try database.sessions(overlapping: 0, .max).last else {
            throw ValidationError("pingem record wrote no session into \(path).")
        }
        let offsets = Dictionary(uniqueKeysWithValues: try database.sessionTargets(sessions: [session.id]).map { ($0.targetID, $0.offsetNs) })
        var sent: [Int64: [Int64]] = [:]
        var probesUntilSample = 0, failed = 0, answered = 0
        try database.forEachProbe(from: session.startedNs, to: session.endNs + 1, targets: nil) { p in
            sent[p.targetID, default: []].append(p.sentNs)
            if p.sentNs <= lastWall { probesUntilSample += 1 }
            if p.sendError != nil { failed += 1 }
            if p.rttNs != nil { answered += 1 }
        }
        // The last slot surely due: one interval before the stop was asked for
        // (the sender stops within that), so a probe cut by the stop is no miss.
        var run = StoredRun(lateness: Lateness(sentTimes: sent, offsets: offsets, startedNs: session.startedNs,
                                               intervalNs: session.intervalNs, lastDueNs: lastWall - session.intervalNs))
        run.probesUntilSample = probesUntilSample
        run.failed = failed
        run.answered = answered
        run.lateReplies = try database.replies(from: session.startedNs, to: session.endNs + 1, targets: nil).count
        run.gaps = try database.gaps(overlapping: session.startedNs, session.endNs + 1).filter { $0.sessionID == session.id }.count
        return run
    }

    func cpuPer1000(_ samples: RunSamples) -> Double {
        (samples.pingem?.cpuSeconds ?? 0) / Double(max(1, probesUntilSample)) * 1000
    }

    func rows(samples: RunSamples) -> [(String, String)] {
        [("  pingem probes sent (stored)", "\(lateness.probes) (\(failed) failed sends, \(answered) replies in their row, \(lateReplies) as reply rows)"),
         ("  pingem CPU (utime+stime)", String(format: "%.2f s = %.4f s per 1000 probes", samples.pingem?.cpuSeconds ?? 0, cpuPer1000(samples)))]
    }

    func latenessRows(samples: RunSamples) -> [(String, String)] {
        func ms(_ ns: Int64) -> String { String(format: "%.3f ms", Double(ns) / 1e6) }
        let sorted = lateness.sorted
        let within1ms = sorted.isEmpty ? 0 : Double(sorted.firstIndex { $0 >= 1_000_000 } ?? sorted.count) / Double(sorted.count) * 100
        return [
            ("  pingem RSS at \(Int(samples.earlyAt)) s / at the end / peak (VmHWM)",
             "\(samples.early?.rssKB ?? 0) kB / \(samples.pingem?.rssKB ?? 0) kB / \(samples.pingem?.hwmKB ?? 0) kB"),
            ("  pingem RSS at the end: private / file pages",
             "\(samples.pingem?.anonKB ?? 0) kB (RssAnon) / \(samples.pingem?.fileKB ?? 0) kB (RssFile: binary and shared libraries)"),
            ("  pingem send lateness p50 / p99 / p99.9 / max",
             "\(ms(lateness.percentile(50))) / \(ms(lateness.percentile(99))) / \(ms(lateness.percentile(99.9))) / \(ms(sorted.last ?? 0))"),
            ("  pingem sends within 1 ms of their slot", String(format: "%.3f %%", within1ms)),
            ("  pingem missed slots, gap rows", "\(lateness.missed), \(gaps)"),
        ]
    }
}

/// fping's side of the comparison, from its summary lines.
func fpingRows(_ fping: String, _ fs: ProcessSample, peakKB: Int, log: String, intervalMs: Int,
               pingemPer1000: Double) -> [(String, String)] {
    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    // "127.0.0.1 : xmt/rcv/%loss = 6000/6000/0%, ..."
    let xmt = text.split(separator: "\n").compactMap { line -> Int? in
        guard let r = line.range(of: "xmt/rcv/%loss = ") else { return nil }
        return Int(line[r.upperBound...].prefix { $0.isNumber })
    }.reduce(0, +)
    let fpingPer1000 = fs.cpuSeconds / Double(max(1, xmt)) * 1000
    return [
        ("  fping probes sent", "\(xmt) (\(fping) -l -p \(intervalMs) -i 0.5 -q, 100 targets)"),
        ("  fping CPU (utime+stime)", String(format: "%.2f s = %.4f s per 1000 probes", fs.cpuSeconds, fpingPer1000)),
        ("  CPU ratio pingem / fping (per probe)", fpingPer1000 > 0 ? String(format: "%.2f", pingemPer1000 / fpingPer1000) : "-"),
        ("  fping peak RSS", "\(peakKB / 1024) MB (\(peakKB) kB)"),
    ]
}

func printTable(_ rows: [(String, String)]) {
    let width = rows.map(\.0.count).max() ?? 0
    for (k, v) in rows { print(k.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + v) }
}
