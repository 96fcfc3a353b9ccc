// What a report of a long window costs in path summaries: a database of
// `--targets` targets with a path summary for every hour of `--days` days
// (12-hop paths, rounds every 30 s, a rate-limited hop, now and then an
// outage lost from hop 5), then `pingem report`'s load and judgement of the
// whole window, timed, with the process's peak memory.
import ArgumentParser
import Foundation
import Reports
import Store

struct PathSummariesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "path-summaries",
        abstract: "Time a report's path over a long window of hourly path summaries.")
    @Option(help: "Database to create; one that exists is reported on as it is.") var db: String
    @Option(help: "Targets.") var targets = 10
    @Option(help: "Days of history.") var days = 365
    @Option(help: "Hops of each path, the target included.") var hops = 12
    @Flag(help: "Add the path summaries to the targets of an existing history (pingem-bench generate's) instead.")
    var addToTargets = false

    func run() throws {
        guard targets >= 1, days >= 1, (2...30).contains(hops) else {
            throw ValidationError("--targets and --days must be positive and --hops 2 to 30.")
        }
        let reuse = FileManager.default.fileExists(atPath: db) && !addToTargets
        if addToTargets && !FileManager.default.fileExists(atPath: db) {
            throw ValidationError("--add-to-targets needs an existing history: make one with pingem-bench generate.")
        }
        let hourNs = summaryHourNs
        let end = Int64(Date().timeIntervalSince1970 * 1e9) / hourNs * hourNs
        let start = end - Int64(days) * 24 * hourNs
        let database = try Database(path: db, mode: .readWrite)
        let ids = addToTargets ? try database.targets().map(\.id)
            : try (1...targets).map { try database.target(name: "t\($0)", host: "10.0.0.\($0)").id }
        let session = SessionRecord(id: 1, runID: 1, pid: 1, hostname: "h", version: "bench", socketKind: "raw",
                                    intervalNs: 1_000_000_000, payloadBytes: 56, startedNs: start - hourNs,
                                    heartbeatNs: end + hourNs, stoppedNs: end + hourNs)
        // 24 hours of rounds, summarized once; every hour of the history is
        // one of them (an encoding is relative to its hour).
        let variants = (0..<24).map { v in
            summarizePathHour(targetID: 1, hourNs: start, probes: rounds(hourNs: start, variant: v), sessions: [session])
        }
        let clock = ContinuousClock()
        var began = clock.now
        if !reuse { try write(variants, database: database, ids: ids, from: start, to: end) }
        print("\(days * 24 * ids.count) path summaries", reuse ? "there" : "written in \(clock.now - began)")

        began = clock.now
        let options = ReportOptions(since: start, until: end, epochNs: 24 * hourNs)
        var input = try ReportInput.load(from: Database(path: db, mode: .readOnly), options: options, summaries: true)
        try input.loadPathProbes(from: Database(path: db, mode: .readOnly), options: options)
        let loaded = clock.now - began
        let report = try makeReport(input, options)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let hopsOut = report.targets.first?.path.count ?? 0
        print("report of \(days) days, \(ids.count) targets: loaded in \(loaded), judged in \(clock.now - began) in all;",
              "\(hopsOut) hops per path, \(report.targets.first?.epochs.count ?? 0) epochs; peak RSS \(usage.ru_maxrss / 1024) MB")
    }

    /// Every hour of [start, end) of every target: one of the variants.
    private func write(_ variants: [PathSummary], database: Database, ids: [Int64], from start: Int64, to end: Int64) throws {
        var batch: [PathSummary] = []
        for hour in stride(from: start, to: end, by: Int(summaryHourNs)) {
            for (t, id) in ids.enumerated() {
                let variant = variants[(Int((hour - start) / summaryHourNs) + t) % variants.count]
                batch.append(try PathSummary(targetID: id, hourNs: hour, encoded: variant.encoded()))
            }
            if batch.count >= 5000 { try database.writeSummaries([], paths: batch); batch = [] }
        }
        try database.writeSummaries([], paths: batch)
    }

    /// An hour of 120 rounds of a `hops`-hop path: hop 3 answers 3 rounds in
    /// 5 (rate-limited); in variant 0 rounds 50 to 59 are lost from hop 5 on.
    private func rounds(hourNs: Int64, variant: Int) -> [PathProbeRecord] {
        var records: [PathProbeRecord] = []
        for r in 0..<120 {
            let roundNs = hourNs + Int64(r) * 30_000_000_000 + 1_000_000
            for ttl in 1...hops {
                let toTarget = ttl == hops
                let sent = roundNs + Int64(ttl - 1) * 100_000
                var p = PathProbeRecord(targetID: 1, roundNs: roundNs, ttl: ttl, toTarget: toTarget, sentNs: sent)
                let lost = (variant == 0 && (50..<60).contains(r) && ttl >= 5) || (ttl == 3 && (r + variant) % 5 >= 3)
                if !lost {
                    p.receivedNs = sent + Int64(ttl) * 1_000_000 + Int64((r * 7919 + ttl * 104_729 + variant) % 900_000)
                    p.from = toTarget ? "203.0.113.50" : "198.18.\(ttl).1"
                    p.answer = toTarget ? .echoReply : .timeExceeded
                    p.icmpType = toTarget ? 0 : 11
                    p.icmpCode = 0
                }
                records.append(p)
            }
        }
        return records
    }
}
