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
    let label = "\(rate) probes/s (100 targets at \(intervalMs) ms)"

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

    let recorder = Process()
    recorder.executableURL = URL(fileURLWithPath: pingem)
    recorder.arguments = ["record"] + targets + ["--interval", "\(intervalMs)ms", "--db", db]
    recorder.standardOutput = FileHandle.nullDevice
    recorder.standardError = FileHandle(forWritingAtPath: {
        let p = dir.appendingPathComponent("record.log").path
        _ = FileManager.default.createFile(atPath: p, contents: nil)
        return p
    }())!
    try recorder.run()
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
    var pinger: Process? = nil
    let fpingLog = dir.appendingPathComponent("fping.log").path
    if let fping {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: fping)
        p.arguments = ["-l", "-p", "\(intervalMs)", "-i", "0.5", "-q"] + targets
        p.standardOutput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: fpingLog, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: fpingLog)!
        try p.run()
        pinger = p
    }

    // Sample once a second; keep the first sample after a minute (or
    // halfway) to show whether memory grows.
    let start = ContinuousClock.now
    var last: (pingem: ProcessSample?, fping: ProcessSample?) = (nil, nil)
    var early: ProcessSample? = nil
    var peakRSS = 0, peakFpingRSS = 0
    let earlyAt = min(60, seconds / 2)
    var lastWall: Int64 = 0
    while true {
        let elapsed = (ContinuousClock.now - start).components
        let t = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        if let s = ProcessSample.read(recorder.processIdentifier) {
            last.pingem = s
            peakRSS = max(peakRSS, s.rssKB)
            if early == nil && t >= earlyAt { early = s }
        } else {
            pinger?.interrupt()
            throw ValidationError("pingem record exited early: \((try? String(contentsOfFile: dir.appendingPathComponent("record.log").path, encoding: .utf8)) ?? "")")
        }
        if let pinger, let s = ProcessSample.read(pinger.processIdentifier) {
            last.fping = s
            peakFpingRSS = max(peakFpingRSS, s.rssKB)
        }
        lastWall = Int64(Date().timeIntervalSince1970 * 1e9)
        if t >= seconds { break }
        usleep(UInt32(min(1.0, seconds - t) * 1_000_000))
    }
    let load = loadAverage()
    recorder.interrupt()
    pinger?.interrupt()
    recorder.waitUntilExit()
    pinger?.waitUntilExit()

    // What pingem stored.
    let database = try Database(path: db, mode: .readOnly)
    guard let session = try database.sessions(overlapping: 0, .max).last else {
        throw ValidationError("pingem record wrote no session into \(db).")
    }
    let offsets = Dictionary(uniqueKeysWithValues: try database.sessionTargets(sessions: [session.id]).map { ($0.targetID, $0.offsetNs) })
    var sent: [Int64: [Int64]] = [:]
    var probesUntilSample = 0
    var failed = 0
    var answered = 0
    try database.forEachProbe(from: session.startedNs, to: session.endNs + 1, targets: nil) { p in
        sent[p.targetID, default: []].append(p.sentNs)
        if p.sentNs <= lastWall { probesUntilSample += 1 }
        if p.sendError != nil { failed += 1 }
        if p.rttNs != nil { answered += 1 }
    }
    let lateReplies = try database.replies(from: session.startedNs, to: session.endNs + 1, targets: nil).count
    let gaps = try database.gaps(overlapping: session.startedNs, session.endNs + 1).filter { $0.sessionID == session.id }
    // The last slot surely due: one interval before the stop was asked for
    // (the sender stops within that), so a probe cut by the stop is no miss.
    let lateness = Lateness(sentTimes: sent, offsets: offsets, startedNs: session.startedNs,
                            intervalNs: session.intervalNs, lastDueNs: lastWall - session.intervalNs)

    let pingemCPU = last.pingem?.cpuSeconds ?? 0
    let pingemPer1000 = pingemCPU / Double(max(1, probesUntilSample)) * 1000
    func ms(_ ns: Int64) -> String { String(format: "%.3f ms", Double(ns) / 1e6) }
    result.rows.append(("\(label): run", String(format: "%.0f s, load average at the end %@", seconds, load)))
    result.rows.append(("  pingem binary", "\(pingem): \(linkage)"))
    if let fpingNote { result.rows.append(("  fping", fpingNote)) }
    result.rows.append(("  pingem probes sent (stored)", "\(lateness.probes) (\(failed) failed sends, \(answered) replies in their row, \(lateReplies) as reply rows)"))
    result.rows.append(("  pingem CPU (utime+stime)", String(format: "%.2f s = %.4f s per 1000 probes", pingemCPU, pingemPer1000)))
    if let fping, let fs = last.fping {
        let log = (try? String(contentsOfFile: fpingLog, encoding: .utf8)) ?? ""
        // "127.0.0.1 : xmt/rcv/%loss = 6000/6000/0%, ..."
        let xmt = log.split(separator: "\n").compactMap { line -> Int? in
            guard let r = line.range(of: "xmt/rcv/%loss = ") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }.reduce(0, +)
        let fpingPer1000 = fs.cpuSeconds / Double(max(1, xmt)) * 1000
        result.rows.append(("  fping probes sent", "\(xmt) (\(fping) -l -p \(intervalMs) -i 0.5 -q, 100 targets)"))
        result.rows.append(("  fping CPU (utime+stime)", String(format: "%.2f s = %.4f s per 1000 probes", fs.cpuSeconds, fpingPer1000)))
        result.rows.append(("  CPU ratio pingem / fping (per probe)", fpingPer1000 > 0 ? String(format: "%.2f", pingemPer1000 / fpingPer1000) : "-"))
        result.rows.append(("  fping peak RSS", "\(peakFpingRSS / 1024) MB (\(peakFpingRSS) kB)"))
    }
    result.rows.append(("  pingem RSS at \(Int(earlyAt)) s / at the end / peak (VmHWM)",
                        "\(early?.rssKB ?? 0) kB / \(last.pingem?.rssKB ?? 0) kB / \(last.pingem?.hwmKB ?? 0) kB"))
    result.rows.append(("  pingem RSS at the end: private / file pages",
                        "\(last.pingem?.anonKB ?? 0) kB (RssAnon) / \(last.pingem?.fileKB ?? 0) kB (RssFile: binary and shared libraries)"))
    result.rows.append(("  pingem send lateness p50 / p99 / p99.9 / max",
                        "\(ms(lateness.percentile(50))) / \(ms(lateness.percentile(99))) / \(ms(lateness.percentile(99.9))) / \(ms(lateness.sorted.last ?? 0))"))
    let within1ms = lateness.sorted.isEmpty ? 0 : Double(lateness.sorted.partitioningIndex { $0 >= 1_000_000 }) / Double(lateness.sorted.count) * 100
    result.rows.append(("  pingem sends within 1 ms of their slot", String(format: "%.3f %%", within1ms)))
    result.rows.append(("  pingem missed slots, gap rows", "\(lateness.missed), \(gaps.count)"))
    return result
}

extension Array where Element == Int64 {
    /// First index whose element satisfies `predicate`, in a sorted array.
    func partitioningIndex(where predicate: (Int64) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            if predicate(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}

func printTable(_ rows: [(String, String)]) {
    let width = rows.map(\.0.count).max() ?? 0
    for (k, v) in rows { print(k.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + v) }
}
