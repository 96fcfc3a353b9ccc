// The database on a 2 MB tmpfs that a filler file fills up: the recorder
// keeps probing, says so once on stderr, holds unwritten probes in memory
// and writes them all when space returns. With a small bound
// (--max-held-probes) it drops the oldest and records a 'dropped' gap, so
// the report shows no data there, not loss. Committed data is never damaged.
import Foundation
import Reports
import Testing
import TestSupport

extension Reliability {
    @Suite(needsRoot) struct DiskFull {
        let dir = TemporaryFolder()

        struct Outcome {
            var db: String
            var session: SessionRow
            var log: Recorder
            var committedBeforeFull: Int64
        }

        /// Records onto a tiny tmpfs, fills it for `fullFor`, frees it, stops.
        func recordThroughAFullDisk(in dir: TemporaryFolder, extra: [String], fullFor: Int64,
                                    _ check: (Outcome) throws -> Void) throws {
            let mount = dir.file("small")
            try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
            try must("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=2M,mode=0700", "tmpfs", mount])
            defer { _ = try? run("/usr/bin/umount", ["-l", mount]) }
            let db = mount + "/full.db"
            let recorder = try Recorder(["127.0.0.1", "six=::1", "--interval", "20ms", "--flush", "200ms", "--db", db] + extra,
                                        logPath: dir.file("full.log"))
            #expect(waitUntil { (try? sqlInt(db, "SELECT count(*) FROM probe")) ?? 0 >= 20 })

            // Fill every last page of the filesystem.
            let filler = mount + "/filler"
            let fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            #expect(fd >= 0)
            let chunk = [UInt8](repeating: 0xA5, count: 4096)
            while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
            #expect(errno == ENOSPC)
            close(fd)
            let committedBeforeFull = try sqlInt(db, "SELECT count(*) FROM probe")
            #expect(waitUntil { recorder.logLines(containing: "cannot write to").count == 1 }, "\(recorder.log)")
            pause(fullFor)
            // A batch is all or nothing. Some may still commit while the disk
            // is full: into space the files hold already (after the
            // upkeep's checkpoint the next batch writes the WAL from its
            // start again; pages freed by compaction). What must
            // hold: a failed batch is said once, kept, and written later.
            #expect(try sql(db, "PRAGMA integrity_check") == [["ok"]])
            unlink(filler)
            #expect(waitUntil { recorder.logLines(containing: "database writable again").count == 1 }, "\(recorder.log)")
            pause(500 * ms)
            #expect(recorder.stop(SIGINT) == 0, "\(recorder.log)")

            #expect(try sql(db, "PRAGMA integrity_check") == [["ok"]])
            // One line when writes began to fail, one when they worked again.
            #expect(recorder.logLines(containing: "cannot write to").count == 1)
            #expect(recorder.logLines(containing: "cannot write to").first?.contains("full") == true, "\(recorder.log)")
            #expect(recorder.logLines(containing: "database writable again").count == 1)
            let session = try #require(try sessions(db).first)
            try check(Outcome(db: db, session: session, log: recorder, committedBeforeFull: committedBeforeFull))
        }

        @Test func aFullDiskLosesNoProbeWithinTheBound() throws {
            try recordThroughAFullDisk(in: dir, extra: [], fullFor: 2 * second) { o in
                #expect(try sqlInt(o.db, "SELECT count(*) FROM gap") == 0)
                #expect(o.log.logLines(containing: "dropping the oldest").isEmpty)
                let placed = try placedProbes(o.db, session: o.session)
                #expect(placed.count == 2)
                for (target, probes) in placed {
                    #expect(probes.map(\.slot) == Array(0..<Int64(probes.count)), "target \(target): a probe was lost")
                }
                let r = try report(o.db, since: o.session.startedNs, until: o.session.stoppedNs!)
                for t in r.targets {
                    #expect(t.summary.lost == 0 && t.summary.unknown == 0 && t.outages.isEmpty)
                    #expect(t.summary.coverage == 1)
                }
            }
        }

        @Test func beyondTheBoundTheOldestAreDroppedAndRecordedAsNoData() throws {
            let bound = 30
            try recordThroughAFullDisk(in: dir, extra: ["--max-held-probes", "\(bound)"], fullFor: 2 * second) { o in
                #expect(o.log.logLines(containing: "dropping the oldest").count == 1, "\(o.log.log)")
                let gaps = try sql(o.db, "SELECT start_ns, end_ns, reason FROM gap WHERE session_id = \(o.session.id)")
                #expect(gaps.count == 1 && gaps.first?[2] == "dropped", "\(gaps)")
                guard gaps.count == 1 else { return }
                let gapStart = Int64(gaps[0][0])!, gapEnd = Int64(gaps[0][1])!
                let placed = try placedProbes(o.db, session: o.session)
                var dropped = 0
                for (target, probes) in placed {
                    // Slots run on without a hole except for one jump, and the
                    // missing probes are exactly those inside the gap.
                    let steps = zip(probes, probes.dropFirst()).map { $1.slot - $0.slot }
                    #expect(steps.filter { $0 != 1 }.count == 1, "target \(target)")
                    #expect(probes.allSatisfy { $0.sentNs < gapStart || $0.sentNs >= gapEnd })
                    dropped += steps.reduce(0) { $0 + Int($1 - 1) }
                }
                // What was held at the end is the bound: everything older went.
                let held = try sqlInt(o.db, "SELECT count(*) FROM probe WHERE sent_ns >= \(gapEnd)")
                #expect(held >= Int64(bound))
                #expect(dropped >= 2 * 2 * 1000 / 20 - 2 * bound - 2 * 10 - 2, "2 s full at 2 probes per 20 ms, minus the bound and a batch")

                let r = try report(o.db, since: o.session.startedNs, until: o.session.stoppedNs!)
                for t in r.targets {
                    #expect(t.summary.lost == 0, "\(t.target): dropped probes counted as loss")
                    #expect(t.summary.unknown == 0 && t.outages.isEmpty)
                    let expected = 1 - Double(gapEnd - gapStart) / Double(o.session.stoppedNs! - o.session.startedNs)
                    #expect(abs(t.summary.coverage - expected) < 1e-9)
                    #expect(t.summary.coverage < 1)
                }
            }
        }
    }
}
