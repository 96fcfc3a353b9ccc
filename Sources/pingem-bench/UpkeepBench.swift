// The recorder's hourly upkeep against a writer: one complete hour of
// history in plain rows (100 targets at 10 ms: 36 million probes, the
// recorder at 10,000 probes/s) is generated, then the upkeep the recorder
// runs once an hour (summarize the hour, compact it into blocks) runs on one
// connection while a writer on another connection commits one second of
// probes every second, as the recorder's writer does, and the two share the
// recorder's WriteTurn (the writer first). Printed: the writer's longest
// commit in 10 s alone first (what the machine gives it), the upkeep's time,
// the writer's longest commit while it ran and the commits that failed
// (SQLITE_BUSY after the busy timeout: probes the recorder would hold in
// memory).
//
// Only the database file given is written; no packet is sent.

import ArgumentParser
import Foundation
import Store
import Synchronization

struct UpkeepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upkeep",
        abstract: "Time the hourly upkeep on one hour of history while a writer commits a batch every second.")
    @Option(help: "Database to create (must not exist).") var db: String
    @Option(help: "Number of targets.") var targets: Int = 100
    @Option(help: "Probe interval.") var interval: String = "10ms"

    func run() throws {
        guard !FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("\(db) exists already: give a new path, the benchmark never touches an existing database.")
        }
        let hourNs: Int64 = 3_600_000_000_000
        // The hour two hours back: complete, and ended more than 30 minutes ago.
        let hourStart = Int64(Date().timeIntervalSince1970 * 1e9) / hourNs * hourNs - 2 * hourNs
        var o = try generateOptions(targets: targets, days: 1.0 / 24, interval: interval, rtt: "20ms",
                                    jitter: "2ms", loss: "0.5%", seed: 1)
        o.endNs = hourStart + hourNs
        o.compact = false
        let generated: GenerateResult
        do {
            let database = try Database(path: db, mode: .readWrite)
            generated = try generateHistory(into: database, o)
            // The upkeep summarizes the hour itself, as the recorder would.
            try database.deleteAllSummaries()
            database.checkpoint()
        }
        let rate = Int(Int64(targets) * 1_000_000_000 / o.intervalNs)
        let result = try runUpkeepBench(path: db, hourEndNs: hourStart + hourNs, targets: targets, rate: rate)
        printTable([("machine", machineDescription()),
                    ("hour of history", "\(generated.probes) probes, \(targets) targets, interval \(interval)")]
                   + result.rows)
    }
}

struct UpkeepBenchResult: Sendable {
    var summarySeconds = 0.0
    var compactionSeconds = 0.0
    var commits: [Double] = []
    /// The commits of the 10 s before the upkeep began: what this machine
    /// gives the writer without it.
    var baselineCommits = 0
    var failedCommits = 0
    var firstFailure: String? = nil
    var rate = 0

    var rows: [(String, String)] {
        let baseline = commits.prefix(baselineCommits), during = commits.dropFirst(baselineCommits)
        let longest = during.max() ?? 0
        return [
            ("writer alone, 10 s: longest commit", String(format: "%.3f s", baseline.max() ?? 0)),
            ("upkeep: summaries / compaction / total", String(format: "%.1f s / %.1f s / %.1f s", summarySeconds,
                                                              compactionSeconds, summarySeconds + compactionSeconds)),
            ("writer: commits of \(rate) probes", "\(during.count) (\(failedCommits) failed"
                + (firstFailure.map { ": \($0)" } ?? "") + ")"),
            ("writer: longest commit (waited)", String(format: "%.3f s", longest)),
            ("writer: commits over 0.5 s / over 1 s (a --flush)", "\(during.count { $0 > 0.5 }) / \(during.count { $0 > 1 })"),
        ]
    }
}

/// What the writer thread shares with the upkeep's.
private final class BenchWriterRun: Sendable {
    let done = Atomic(false)
    let commitsSoFar = Atomic(0)
    let result = Mutex<Result<UpkeepBenchResult, any Error>?>(nil)
    let finished = DispatchSemaphore(value: 0)
}

/// The upkeep on this thread, the writer on its own, each on its own
/// connection; the writer commits until the upkeep is done.
func runUpkeepBench(path: String, hourEndNs: Int64, targets: Int, rate: Int) throws -> UpkeepBenchResult {
    let run = BenchWriterRun()
    let turn = WriteTurn()
    Thread {
        let outcome = Result { try benchWriter(path: path, targets: targets, rate: rate,
                                               startNs: hourEndNs + 1_800_000_000_000, turn: turn, until: run) }
        run.result.withLock { $0 = outcome }
        run.finished.signal()
    }.start()
    let clock = ContinuousClock()
    var result = UpkeepBenchResult()
    Thread.sleep(forTimeInterval: 10)
    result.baselineCommits = run.commitsSoFar.load(ordering: .relaxed)
    let upkeep = Result { () throws -> Void in
        let database = try Database(path: path, mode: .readWrite)
        try database.limitPageCache(kibibytes: 512)
        database.beforeWriteTransaction = { turn.yield() }
        let began = clock.now
        try database.summarizeHours(endingBy: hourEndNs, maxHours: 1)
        result.summarySeconds = seconds(clock.now - began)
        let compacting = clock.now
        try database.compact(hoursEndingBefore: hourEndNs, limit: 1)
        result.compactionSeconds = seconds(clock.now - compacting)
    }
    // Two more commits after the upkeep, so a commit it held is counted.
    Thread.sleep(forTimeInterval: 2)
    run.done.store(true, ordering: .relaxed)
    run.finished.wait()
    try upkeep.get()
    let writer = try run.result.withLock { try $0!.get() }
    result.commits = writer.commits
    // Failures are counted over the whole run, baseline included.
    result.failedCommits = writer.failedCommits
    result.firstFailure = writer.firstFailure
    result.rate = rate
    return result
}

/// One batch of `rate` probes per second (deadlines start + n s), each
/// commit timed; a failed commit is counted and its probes dropped (the
/// recorder would hold them and write them with the next batch).
private func benchWriter(path: String, targets: Int, rate: Int, startNs: Int64, turn: WriteTurn,
                         until run: BenchWriterRun) throws -> UpkeepBenchResult {
    let database = try Database(path: path, mode: .readWrite)
    try database.leaveCheckpointsToOthers(safetyPages: 10_000)  // as the recorder's writer
    let ids = try database.targets().map(\.id).prefix(targets)
    let session = try database.beginSession(
        NewSession(runID: 7, pid: 4243, hostname: "bench", version: "bench", socketKind: "raw",
                   intervalNs: Int64(targets) * 1_000_000_000 / Int64(rate), payloadBytes: 56, startedNs: startNs),
        targets: [])
    let clock = ContinuousClock()
    let began = clock.now
    var result = UpkeepBenchResult()
    var second: Int64 = 0
    while !run.done.load(ordering: .relaxed) {
        var batch = WriteBatch()
        let stepNs = 1_000_000_000 / Int64(rate)
        for k in 0..<Int64(rate) {
            let sent = startNs + second * 1_000_000_000 + k * stepNs
            batch.probes.append(ProbeRecord(sentNs: sent, targetID: ids[ids.startIndex + Int(k) % ids.count],
                                            rttNs: 20_000_000))
        }
        batch.heartbeatNs = startNs + (second + 1) * 1_000_000_000
        let committing = clock.now
        do { try turn.first { try database.write(batch, session: session) } } catch {
            result.failedCommits += 1
            if result.firstFailure == nil { result.firstFailure = "\(error)" }
        }
        result.commits.append(seconds(clock.now - committing))
        run.commitsSoFar.store(result.commits.count, ordering: .relaxed)
        second += 1
        let next = began + .seconds(second)
        let left = next - clock.now
        if left > .zero { Thread.sleep(forTimeInterval: seconds(left)) }
    }
    return result
}
