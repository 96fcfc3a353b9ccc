// The live page's cost: `pingem serve` on a long history (one made by
// `pingem-bench generate`) while probes are appended as a recorder writes
// them (one batch a second, a probe per target, in a session of its own),
// with one or ten `/events` streams of one window open (curl, loopback
// only). Printed: serve's CPU time over the run (utime + stime from
// /proc/PID/stat, every thread) as a share of one core, and how long an
// appended batch took to reach the stream: from its commit to the first
// data event whose newest epoch shows it (batch k's probes answer in
// 100 ms + k * 10 µs, so the newest epoch's max RTT names the newest batch).
//
// The database given is appended to (a session of `--seconds` plus the
// warm-up): run it on a copy. No packet is sent.

import ArgumentParser
import Foundation
import Store
import Synchronization

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Time pingem serve's event streams on a long history while probes are appended.")
    @Option(help: "Database made by pingem-bench generate (appended to: use a copy).") var db: String
    @Option(help: "The page's window.") var last: String = "30d"
    @Option(help: "Seconds measured (after the first data event of every stream).") var seconds: Double = 30
    @Flag(help: "Open ten streams of the window instead of one.") var ten = false
    @Option(help: "The pingem binary (default: the one beside pingem-bench).") var pingem: String?
    @Option(help: "Seconds to wait for every stream's first data event.") var firstLimit: Double = 600

    func run() throws {
        guard FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("\(db) does not exist: make one with pingem-bench generate --days 30, and give a copy.")
        }
        let binary = pingem ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("pingem").path
        let result = try runEventsBench(db: db, pingem: binary, last: last, streams: ten ? 10 : 1,
                                        seconds: seconds, firstLimit: firstLimit)
        printTable([("machine", machineDescription())] + result)
    }
}

/// Appends one probe per target every second from now on, as a recorder's
/// writer commits them; remembers when each batch was committed.
private final class Appender: Sendable {
    let commits = Mutex<[(at: ContinuousClock.Instant, count: Int)]>([])
    let stop = Atomic(false)
    let failure = Mutex<String?>(nil)

    func run(path: String) {
        do {
            let db = try Database(path: path, mode: .readWrite)
            let targets = try db.targets()
            let second: Int64 = 1_000_000_000
            var now = Int64(Date().timeIntervalSince1970 * 1e9) / second * second
            let session = try db.beginSession(
                NewSession(runID: UInt64(now), pid: 4243, hostname: "bench", version: "bench", socketKind: "raw",
                           intervalNs: second, payloadBytes: 56, startedNs: now),
                targets: targets.map { SessionTargetRecord(sessionID: 0, targetID: $0.id, offsetNs: 0) })
            var count = 0
            while !stop.load(ordering: .relaxed) {
                let wall = Int64(Date().timeIntervalSince1970 * 1e9)
                if wall < now + second { usleep(UInt32((now + second - wall) / 1000)); continue }
                var batch = WriteBatch()
                for target in targets {
                    batch.probes.append(ProbeRecord(sentNs: now, targetID: target.id, rttNs: 100_000_000 + Int64(count + 1) * 10_000))
                }
                batch.heartbeatNs = now + second
                try db.write(batch, session: session)
                count += 1
                commits.withLock { $0.append((ContinuousClock.now, count)) }
                now += second
            }
            try db.endSession(session, stoppedNs: now)
        } catch {
            failure.withLock { $0 = "\(error)" }
        }
    }
}

/// One curl reading an event stream; notes when each data event arrived
/// and, with `parse`, the newest batch it shows (JSONSerialization of half
/// a megabyte per event in ten streams would make the benchmark, not
/// serve, the bottleneck).
private final class StreamReader: Sendable {
    let events = Mutex<[(at: ContinuousClock.Instant, batch: Int)]>([])
    let process: Process

    init(url: String, parse: Bool) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sN", url]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let handle = out.fileHandleForReading
        Thread.detachNewThread { [self] in
            // Bytes, scanned once each: searching a growing String for the
            // frame's end made the benchmark, not serve, the bottleneck.
            var pending: [UInt8] = [], scanned = 0
            while true {
                let data = handle.availableData
                if data.isEmpty { return }
                pending += data
                var i = max(1, scanned)
                while i < pending.count {
                    guard pending[i] == 10 && pending[i - 1] == 10 else { i += 1; continue }
                    let frame = pending[..<(i - 1)]
                    if frame.starts(with: Array("event: data".utf8)) {
                        let batch = parse ? (newestMaxUs(String(decoding: frame, as: UTF8.self)) - 100_000) / 10 : 0
                        events.withLock { $0.append((ContinuousClock.now, batch)) }
                    }
                    pending.removeFirst(i + 1)
                    i = 1
                }
                scanned = pending.count
            }
        }
    }
}

/// The first target's max RTT (µs) in the last epoch of the page's finest
/// level, from one event's text.
private func newestMaxUs(_ frame: String) -> Int {
    let json = frame.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { $0.dropFirst(6) }.joined(separator: "\n")
    guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
          let levels = object["levels"] as? [[String: Any]], let finest = levels.first,
          let targets = finest["targets"] as? [[String: Any]], let max = targets.first?["max"] as? [Any]
    else { return 0 }
    return max.last as? Int ?? 0
}

private func cpuSeconds(_ pid: Int32) -> Double { ProcessSample.read(pid)?.cpuSeconds ?? .nan }

func runEventsBench(db: String, pingem: String, last: String, streams: Int, seconds: Double,
                    firstLimit: Double) throws -> [(String, String)] {
    let port = 18_000 + Int(getpid() % 1000)
    let log = NSTemporaryDirectory() + "pingem-bench-events-\(getpid()).log"
    let serve = try startProcess(pingem, ["serve", "--db", db, "--listen", "127.0.0.1:\(port)"], log: log)
    defer { serve.interrupt(); serve.waitUntilExit() }
    let clock = ContinuousClock()
    let began = clock.now
    while !(try String(contentsOfFile: log, encoding: .utf8)).contains("pingem: serving") {
        guard serve.isRunning, clock.now - began < .seconds(60) else {
            throw ValidationError("pingem serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        usleep(20_000)
    }
    // serve builds its /metrics totals in the background at start; the
    // first scrape waits for them, so the streams are timed without them.
    let metricsStart = clock.now
    _ = try? String(contentsOf: URL(string: "http://127.0.0.1:\(port)/metrics")!, encoding: .utf8)
    let metricsAfter = clock.now - metricsStart
    let appender = Appender()
    let writer = Thread { appender.run(path: db) }
    writer.start()
    defer { appender.stop.store(true, ordering: .relaxed) }
    let readers = try (0..<streams).map { try StreamReader(url: "http://127.0.0.1:\(port)/events?last=\(last)", parse: $0 == 0) }
    defer { for r in readers { r.process.terminate() } }
    // Warm up: every stream has had its first data event (serve then keeps
    // the epochs that can no longer change).
    let firstWait = clock.now
    while readers.contains(where: { $0.events.withLock { $0.isEmpty } }) {
        guard clock.now - firstWait < .seconds(firstLimit) else {
            let cpu = cpuSeconds(serve.processIdentifier)
            return [("first data event", String(format: "none within %.0f s (serve used %.1f s of CPU)", firstLimit, cpu))]
        }
        usleep(50_000)
    }
    let firstAfter = clock.now - firstWait
    let cpuBefore = cpuSeconds(serve.processIdentifier)
    let measureStart = clock.now
    let committedBefore = appender.commits.withLock { $0.count }
    usleep(UInt32(seconds * 1e6))
    let cpuAfter = cpuSeconds(serve.processIdentifier)
    let elapsed = Double((clock.now - measureStart).components.seconds) + Double((clock.now - measureStart).components.attoseconds) / 1e18
    if let failure = appender.failure.withLock({ $0 }) { throw ValidationError("appending failed: \(failure)") }

    // Each batch's delay: to the first event (of the first stream) that shows it.
    let commits = appender.commits.withLock { $0 }.dropFirst(committedBefore)
    let events = readers[0].events.withLock { $0 }
    var delays: [Double] = []
    for commit in commits {
        guard let seen = events.first(where: { $0.at >= commit.at && $0.batch >= commit.count }) else { continue }
        let d = (seen.at - commit.at).components
        delays.append(Double(d.seconds) + Double(d.attoseconds) / 1e18)
    }
    delays.sort()
    let frames = readers.map { r in r.events.withLock { $0.filter { $0.at >= measureStart }.count } }
    func quantile(_ q: Double) -> String {
        delays.isEmpty ? "-" : String(format: "%.2f s", delays[min(delays.count - 1, Int(Double(delays.count) * q))])
    }
    return [
        ("serve", pingem),
        ("window, streams", "/events?last=\(last), \(streams) stream\(streams == 1 ? "" : "s")"),
        ("first /metrics (totals built)", String(format: "after %.1f s", Double(metricsAfter.components.seconds))),
        ("first data event of every stream", String(format: "after %.1f s", Double(firstAfter.components.seconds))),
        ("serve CPU over the run", String(format: "%.2f s in %.1f s: %.1f %% of a core", cpuAfter - cpuBefore, elapsed,
                                          (cpuAfter - cpuBefore) / elapsed * 100)),
        ("data events per stream", frames.map(String.init).joined(separator: ", ")),
        ("batches appended / seen in the stream", "\(commits.count) / \(delays.count)"),
        ("commit to stream: median, p90, max", "\(quantile(0.5)), \(quantile(0.9)), \(delays.last.map { String(format: "%.2f s", $0) } ?? "-")"),
        ("load average at the end", (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"),
    ]
}
