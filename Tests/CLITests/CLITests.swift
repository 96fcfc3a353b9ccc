// The CLI as a user meets it: the real binary, its exit codes, its one
// sentence on stderr, and a short recording on loopback (the kernel answers
// 127.0.0.1 itself; no other address is ever probed).
import Foundation
import Store
import Testing
import TestSupport

/// Recording opens a raw socket, which needs root here (ping_group_range is
/// closed): without it the runner reports the test skipped (under CI, failed).
let needsRecording = ConditionTrait.requiresRoot("recording (a raw socket: ping_group_range is closed here)")

/// A usage error: exit 64, `phrase` (if any) on stderr, nothing on stdout,
/// and no database created.
func expectUsageError(_ arguments: [String], phrase: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let db = dir.appendingPathComponent("x.db").path
    let r = try pingem(arguments + ["--db", db])
    #expect(r.status == 64, "\(arguments): exit \(r.status), stderr \(r.stderr)", sourceLocation: sourceLocation)
    #expect(phrase.isEmpty || r.stderr.contains(phrase), "\(arguments): \(r.stderr)", sourceLocation: sourceLocation)
    #expect(r.stdout.isEmpty, "\(arguments): \(r.stdout)", sourceLocation: sourceLocation)
    #expect(!FileManager.default.fileExists(atPath: db), "a usage error created the database", sourceLocation: sourceLocation)
}

let second: Int64 = 1_000_000_000

/// A small history: one session of 10 probes at 1 s, two lost, one late.
func makeHistory(at path: String, start: Int64) throws {
    let db = try Database(path: path, mode: .readWrite)
    let t = try db.target(name: "router", host: "198.18.0.1")
    let session = try db.beginTestSession(intervalNs: second, startedNs: start, targets: [t.id])
    var batch = WriteBatch()
    batch.addresses = [AddressRecord(targetID: t.id, sinceNs: start, address: "198.18.0.1")]
    for k in 0..<10 {
        let sent = start + Int64(k) * second
        let rtt: Int64? = (k == 3 || k == 4) ? nil : (k == 7 ? 5 * second : Int64(10 + k) * 1_000_000)
        batch.probes.append(ProbeRecord(sentNs: sent, targetID: t.id, rttNs: rtt))
    }
    batch.heartbeatNs = start + 10 * second
    try db.write(batch, session: session)
    try db.endSession(session, stoppedNs: start + 20 * second)
}

@Suite struct CLITests {
    @Test func topLevelHelpIsPinned() throws {
        let r = try pingem(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout == """
            OVERVIEW: Record every ICMP echo probe with exact times; report any window
            later.

            pingem record sends probes on a fixed schedule and stores every probe's send
            time and every reply's receive time in SQLite. pingem report cuts any window of
            that history into epochs: loss, latency percentiles, jitter and outages.

            USAGE: pingem <subcommand>

            OPTIONS:
              --version               Show the version.
              -h, --help              Show help information.

            SUBCOMMANDS:
              record                  Probe targets on a fixed schedule and store every
                                      probe and reply.
              report                  Summarise any window of the recorded history: loss,
                                      latency, jitter, outages.
              export                  Export a window of the recorded history for people to
                                      look at.
              status                  Is a recorder running on this database, since when,
                                      and what has it written.
              watch                   Show every target live: last RTT, loss and latency
                                      over the last minute and hour.
              serve                   Serve the export page live, and Prometheus /metrics,
                                      over HTTP.
              dump                    Print the recorded rows of any window as CSV,
                                      compacted hours included.
              prune                   Delete raw probes older than a duration and give the
                                      space back.

              See 'pingem help <subcommand>' for detailed help.

            """)
    }

    @Test func reportHelpNamesEveryOption() throws {
        let r = try pingem(["report", "--help"])
        #expect(r.status == 0)
        for option in ["--last <duration>", "--since <time>", "--until <time>", "--epoch <duration>",
                       "--timeout <duration>", "--outage-min <count>", "--target <target>",
                       "--format <format>", "--db <path>", "--fail-if <field>value>", "--exact", "(default: 2s)", "(default: 3)"] {
            #expect(r.stdout.contains(option), "report --help lacks \(option)")
        }
    }

    @Test(arguments: [
        (["report", "--last", "5x"], "is not a duration"),
        (["report", "--last", "-3h"], ""),
        (["report", "--since", "2026-11-26", "--until", "2026-11-25"], "before its end"),
        (["report", "--since", "yesterday-ish"], ""),
        (["report", "--last", "1h", "--since", "2026-11-25"], ""),
        (["report", "--format", "xml"], ""),
        (["report", "--timeout", "0s"], ""),
        (["report", "--outage-min", "0"], "--outage-min"),
        (["report", "--no-such-flag"], ""),
        (["report", "--path", "--format", "json"], "drop --path or use --format table"),
        (["report", "--path", "--format", "csv"], "drop --path or use --format table"),
        (["record"], "no target given"),
        (["record", "--interval", "1ms", "127.0.0.1"], "at least 10ms"),
        (["record", "--size", "47", "127.0.0.1"], "--size"),
        (["record", "--flush", "2m", "127.0.0.1"], "--flush"),
        (["record", "=127.0.0.1"], "not a target"),
        (["record", "a=127.0.0.1", "a=127.0.0.2"], "named twice"),
    ])
    func usageErrorsExit64WithOneSentence(arguments: [String], phrase: String) throws {
        try expectUsageError(arguments, phrase: phrase)
    }

    @Test func badDatabaseFilesAreRefusedAndLeftUntouched() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let garbage = dir.appendingPathComponent("garbage.db").path
        let bytes = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try bytes.write(to: URL(fileURLWithPath: garbage))
        for (arguments, phrase) in [
            (["report", "--db", garbage], garbage),
            (["status", "--db", garbage], garbage),
            (["report", "--db", dir.appendingPathComponent("missing.db").path], "does not exist"),
            (["report", "--db", dir.path], dir.path),
        ] {
            let r = try pingem(arguments)
            #expect(r.status == 1, "\(arguments): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(phrase), "\(arguments): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "more than one line: \(r.stderr)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: garbage)) == bytes)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("missing.db").path))
    }

    @Test func reportReadsTheDatabaseThroughTheBinary() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("h.db").path
        let start: Int64 = 1_764_000_000 * second  // 2025-11-24T16:00:00Z
        try makeHistory(at: db, start: start)
        let r = try pingem(["report", "--db", db, "--since", "2025-11-24T16:00:00Z", "--until",
                            "2025-11-24T16:00:20Z", "--epoch", "5s", "--timeout", "2s", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let target = (json["targets"] as! [[String: Any]])[0]
        #expect(target["target"] as? String == "router")
        #expect(target["addresses"] as? [String] == ["198.18.0.1"])
        let summary = target["summary"] as! [String: Any]
        #expect(summary["sent"] as? Int == 10)
        #expect(summary["received"] as? Int == 7)
        #expect(summary["lost"] as? Int == 3)
        #expect(summary["late"] as? Int == 1)
        #expect(summary["unknown"] as? Int == 0)
        #expect(summary["coverage"] as? Double == 1)
        let epochs = target["epochs"] as! [[String: Any]]
        #expect(epochs.map { $0["sent"] as? Int } == [5, 5, 0, 0])
        #expect(epochs.map { $0["coverage"] as? Double } == [1, 1, 1, 1])
        // With a 6 s timeout the late reply counts: the history answers both.
        let r6 = try pingem(["report", "--db", db, "--since", "2025-11-24T16:00:00Z", "--until",
                             "2025-11-24T16:00:20Z", "--timeout", "6s", "--format", "csv"])
        let row = r6.stdout.split(separator: "\n")[1].split(separator: ",", omittingEmptySubsequences: false)
        #expect(row[4...7] == ["10", "8", "2", "0"])  // sent, received, lost, late
    }

    /// Whole summarized hours come from summaries (percentiles approximate,
    /// said in the JSON and under the table); --exact reads every probe.
    @Test func reportSaysWhereItsPercentilesCameFromAndExactForcesTheScan() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("h.db").path
        let start: Int64 = 1_764_000_000 * second  // 2025-11-24T16:00:00Z, a whole hour
        do {
            let db = try Database(path: path, mode: .readWrite)
            let t = try db.target(name: "router", host: "198.18.0.1")
            let session = try db.beginTestSession(intervalNs: 10 * second, startedNs: start, targets: [t.id])
            var batch = WriteBatch()
            for k in 0..<720 {  // two hours at 10 s, every 7th lost
                batch.probes.append(ProbeRecord(sentNs: start + Int64(k) * 10 * second, targetID: t.id,
                                                rttNs: k % 7 == 0 ? nil : Int64(10 + k % 13) * 1_000_000))
            }
            batch.heartbeatNs = start + 7200 * second
            try db.write(batch, session: session)
            try db.endSession(session, stoppedNs: start + 7300 * second)
            #expect(try db.summarizeHours(endingBy: start + 7200 * second, maxHours: 10) == 2)
        }
        let window = ["--db", path, "--since", "2025-11-24T16:00:00Z", "--until", "2025-11-24T18:00:00Z", "--epoch", "1h"]
        let fast = try pingem(["report"] + window + ["--format", "json"])
        #expect(fast.status == 0, "\(fast.stderr)")
        #expect(fast.stdout.contains("\"percentiles\": \"approximate\""))
        #expect(fast.stdout.contains("\"sent\": 720,"))
        #expect(fast.stdout.contains("\"lost\": 103,"))
        let exact = try pingem(["report"] + window + ["--exact", "--format", "json"])
        #expect(exact.stdout.contains("\"percentiles\": \"exact\""))
        #expect(exact.stdout.contains("\"sent\": 720,"))
        #expect(exact.stdout.contains("\"lost\": 103,"))
        let table = try pingem(["report"] + window)
        #expect(table.stdout.hasSuffix("Percentiles of whole hours come from hourly summaries (within 1 %); --exact reads every probe.\n"))
        let exactTable = try pingem(["report"] + window + ["--exact"])
        #expect(!exactTable.stdout.contains("hourly summaries"))
    }

    @Test func statusSaysWhetherARecorderRuns() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("s.db").path
        try makeHistory(at: db, start: 1_764_000_000 * second)
        let r = try pingem(["status", "--db", db])
        #expect(r.status == 0)
        #expect(r.stdout.contains("not running"))
        #expect(r.stdout.contains("stopped cleanly"))
        #expect(r.stdout.contains("router"))
        #expect(r.stdout.contains("10 sent, 8 replies"))
    }

    /// Records loopback for a moment, stops with `signal`, and checks nothing
    /// sent or received was lost on the way to the database.
    @Test(needsRecording, arguments: [SIGINT, SIGTERM])
    func recordsLoopbackAndStopsCleanly(signal: Int32) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("r.db").path
        let err = Pipe()
        let p = try startPingem(["record", "127.0.0.1", "six=::1", "--interval", "50ms", "--db", db, "--verbose"], stderr: err)
        Thread.sleep(forTimeInterval: 1.5)
        // A second recorder on the same database is refused and names the first.
        let second = try pingem(["record", "127.0.0.1", "--db", db])
        #expect(second.status == 1)
        #expect(second.stderr.contains("pid \(p.processIdentifier)"))
        let running = try pingem(["status", "--db", db])
        #expect(running.stdout.contains("running, pid \(p.processIdentifier)"))
        kill(p.processIdentifier, signal)
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(log)")
        let sentLines = log.split(separator: "\n").filter { $0.hasSuffix(" sent") && $0.contains(": probe ") }.count
        let replyLines = log.split(separator: "\n").filter { $0.contains(": reply to probe ") }.count
        let r = try pingem(["report", "--db", db, "--last", "1h", "--format", "json"])
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let targets = json["targets"] as! [[String: Any]]
        let summaries = targets.map { $0["summary"] as! [String: Any] }
        let sent = summaries.map { $0["sent"] as! Int }.reduce(0, +)
        let received = summaries.map { $0["received"] as! Int }.reduce(0, +)
        // Every probe the log says was sent, and every reply it says arrived, is stored.
        #expect(sent == sentLines && sent >= 50)
        #expect(received == replyLines)
        #expect(summaries.allSatisfy { $0["lost"] as? Int == 0 && $0["duplicates"] as? Int == 0 })
        #expect(targets.map { $0["addresses"] as! [String] } == [["127.0.0.1"], ["::1"]])
        let status = try pingem(["status", "--db", db])
        #expect(status.stdout.contains("stopped cleanly"))
    }
}
