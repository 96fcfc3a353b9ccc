// Another process holds SQLite's write lock (BEGIN EXCLUSIVE in the sqlite3
// shell) for 7 s, longer than the 5 s busy timeout: the writer's batch fails
// once (one line on stderr), is kept, and is written at a later flush; the
// sender, a thread of its own, never waits: every probe is on its slot.
import Foundation
import Reports
import Testing
import TestSupport

extension Reliability {
    @Suite(needsRoot) struct WriteLock {
        let dir = TemporaryFolder()

        @Test func aLockedDatabaseDelaysWritesButNeverTheSchedule() throws {
            let db = dir.file("lock.db")
            let interval = 20 * ms
            let recorder = try Recorder(["127.0.0.1", "six=::1", "--interval", "20ms", "--flush", "200ms", "--db", db],
                                        logPath: dir.file("lock.log"))
            #expect(waitUntil { (try? sqlInt(db, "SELECT count(*) FROM probe")) ?? 0 > 0 })

            // The shell runs each statement as its line arrives and holds the
            // lock until COMMIT comes on stdin.
            let shell = Process()
            shell.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
            shell.arguments = ["-batch", db]
            let input = Pipe()
            shell.standardInput = input
            shell.standardOutput = FileHandle.nullDevice
            shell.standardError = FileHandle.nullDevice
            try shell.run()
            // .timeout: wait for the recorder's own short write transactions
            // instead of failing BEGIN EXCLUSIVE when one is under way.
            input.fileHandleForWriting.write(Data(".timeout 5000\nBEGIN EXCLUSIVE;\n".utf8))
            // Locked once another writer fails at once (.timeout 0).
            let locked = waitUntil {
                (try? run("/usr/bin/sqlite3", ["-batch", db, "BEGIN IMMEDIATE; ROLLBACK;"]).status) != 0
            }
            #expect(locked, "the shell never took the write lock")
            let lockedAt = wallNow()
            pause(7 * second)
            input.fileHandleForWriting.write(Data("COMMIT;\n".utf8))
            try input.fileHandleForWriting.close()
            shell.waitUntilExit()
            #expect(waitUntil { recorder.logLines(containing: "database writable again").count == 1 })
            pause(500 * ms)
            #expect(recorder.stop(SIGINT) == 0, "\(recorder.log)")

            // One failure message, one recovery message.
            #expect(recorder.logLines(containing: "cannot write to").count == 1, "\(recorder.log)")
            #expect(recorder.logLines(containing: "cannot write to").first?.contains("locked") == true)
            let session = try #require(try sessions(db).first)
            #expect(session.heartbeatNs > lockedAt)
            #expect(try sqlInt(db, "SELECT count(*) FROM gap") == 0)
            let placed = try placedProbes(db, session: session)
            #expect(placed.count == 2)
            for (target, probes) in placed {
                // No probe lost: slots 0, 1, 2, ... up to the stop.
                #expect(probes.map(\.slot) == Array(0..<Int64(probes.count)), "target \(target): a hole")
                let due = slotsDue(by: session.stoppedNs!, session: session,
                                  offset: try offsets(db, session: session.id)[target]!)
                #expect(Int64(probes.count) >= due - 1 && Int64(probes.count) <= due + 1)
                let slip = scheduleSlip(probes, interval: interval)
                #expect(slip == nil, "target \(target): \(slip ?? "")")
            }
            let r = try report(db, since: session.startedNs, until: session.stoppedNs!)
            for t in r.targets {
                #expect(t.summary.lost == 0 && t.summary.unknown == 0 && t.outages.isEmpty)
                #expect(t.summary.coverage == 1)
            }
        }
    }
}
