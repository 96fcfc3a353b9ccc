// Readers in other processes while the recorder writes: the sqlite3 shell
// holding a read transaction open for seconds, and slow `pingem report` and
// `pingem export html` runs over two days of history in the same database.
// In WAL mode readers never block the writer (the WAL only grows until they
// finish), and the sender is a thread of its own anyway: every probe is on
// its slot, none is dropped, and nothing is lost.
import Foundation
import Reports
import Testing
import TestSupport

extension Reliability {
    @Suite(needsRoot) struct LongReader {
        let dir = TemporaryFolder()

        /// pingem-bench sits next to pingem in the build folder.
        static let benchBinary = URL(fileURLWithPath: pingemBinary).deletingLastPathComponent()
            .appendingPathComponent("pingem-bench").path

        @Test func readersOfALargeHistoryNeverDelayTheSchedule() throws {
            let db = dir.file("history.db")
            try must(Self.benchBinary, ["generate", "--db", db, "--targets", "10", "--days", "2"])
            // The generator compacts as the recorder does: most probes are in blocks.
            let allProbes = "SELECT (SELECT count(*) FROM probe) + (SELECT coalesce(sum(count), 0) FROM block)"
            let historyProbes = try sqlInt(db, allProbes)
            let historyGaps = try sqlInt(db, "SELECT count(*) FROM gap")
            let historySessions = try sqlInt(db, "SELECT count(*) FROM session")
            let historyEnd = try sqlInt(db, "SELECT max(sent_ns) FROM probe")
            #expect(historyProbes > 1_000_000, "the generated history is too small to make readers slow")

            let interval = 20 * ms
            let recorder = try Recorder(["127.0.0.1", "six=::1", "--interval", "20ms", "--flush", "200ms", "--db", db],
                                        logPath: dir.file("reader.log"))
            // Recording: its session is there and its first batch committed.
            #expect(waitUntil {
                (try? sqlInt(db, "SELECT count(*) FROM session")) ?? 0 == historySessions + 1
                    && (try? sqlInt(db, "SELECT count(*) FROM probe WHERE sent_ns > \(historyEnd)")) ?? 0 > 0
            })

            // A read transaction held open: the shell runs each statement as
            // its line arrives, and the snapshot lives until COMMIT.
            let shell = Process()
            shell.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
            shell.arguments = ["-batch", db]
            let input = Pipe(), output = Pipe()
            shell.standardInput = input
            shell.standardOutput = output
            shell.standardError = FileHandle.nullDevice
            try shell.run()
            input.fileHandleForWriting.write(Data("BEGIN;\n\(allProbes);\n".utf8))
            // The count arrives once the read transaction holds its snapshot.
            let counted = output.fileHandleForReading.availableData
            #expect(Int64(String(decoding: counted, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                    >= historyProbes)
            let readerFrom = wallNow()

            // Meanwhile, slow full reads of the whole history, one after
            // another, for as long as the shell holds its snapshot.
            var reads = 0
            var readFailures: [String] = []
            while reads < 2 || wallNow() - readerFrom < 6 * second {
                let args: [String] = reads % 2 == 0
                    ? ["report", "--db", db, "--last", "3d", "--epoch", "5m", "--format", "json"]
                    : ["export", "html", "--db", db, "--last", "3d", "-o", dir.file("page.html")]
                let r = try run(pingemBinary, args)
                if r.status != 0 { readFailures.append("\(args[0]): \(r.stderr)") }
                reads += 1
            }
            input.fileHandleForWriting.write(Data("COMMIT;\n".utf8))
            try input.fileHandleForWriting.close()
            shell.waitUntilExit()
            #expect(readFailures.isEmpty, "\(readFailures)")
            #expect(reads >= 2)
            pause(500 * ms)
            #expect(recorder.stop(SIGINT) == 0, "\(recorder.log)")
            #expect(recorder.logLines(containing: "cannot write to").isEmpty, "\(recorder.log)")

            let session = try #require(try sessions(db).last)
            #expect(session.stoppedNs != nil && session.startedNs < readerFrom)
            #expect(try sqlInt(db, "SELECT count(*) FROM gap") == historyGaps)
            #expect(try sqlInt(db, "SELECT count(*) FROM gap WHERE session_id = \(session.id)") == 0)
            let placed = try placedProbes(db, session: session)
            let ours = try offsets(db, session: session.id)
            #expect(Set(placed.keys) == Set(ours.keys) && ours.count == 2)
            for (target, probes) in placed {
                // No probe dropped: slots 0, 1, 2, ... up to the stop.
                #expect(probes.map(\.slot) == Array(0..<Int64(probes.count)), "target \(target): a hole")
                let due = slotsDue(by: session.stoppedNs!, session: session, offset: ours[target]!)
                #expect(Int64(probes.count) >= due - 1 && Int64(probes.count) <= due + 1)
                let slip = scheduleSlip(probes, interval: interval)
                #expect(slip == nil, "target \(target): \(slip ?? "")")
                // Every probe sent (its answer may be a reply row of a
                // later batch: the report counts those).
                #expect(probes.allSatisfy { $0.sendError == nil }, "target \(target)")
            }
            let r = try report(db, since: session.startedNs, until: session.stoppedNs!)
            let recorded = r.targets.filter { $0.summary.sent > 0 }
            #expect(recorded.count == 2)
            for t in recorded {
                #expect(t.summary.lost == 0 && t.summary.unknown == 0 && t.outages.isEmpty, "\(t.target)")
                #expect(t.summary.coverage == 1 && t.summary.received == t.summary.sent, "\(t.target)")
            }
            #expect(recorded.map(\.summary.sent).reduce(0, +) == placed.values.map(\.count).reduce(0, +))
        }
    }
}
