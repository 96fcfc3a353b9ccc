// kill -9 at seeded random moments, 20 times on one database: every batch
// committed before a kill survives, at most one batch is lost per kill, and
// reports show the dead time as no data, never as loss or outage.
import Foundation
import Reports
import Testing
import TestSupport

/// The whole suite runs one test at a time: its checks are about the
/// recorder's schedule, and parallel recorders would only measure each other.
@Suite(.serialized) struct Reliability {}

extension Reliability {
    @Suite(needsRoot) struct HardKill {
        let dir = TemporaryFolder()

        @Test func twentyKillsLoseAtMostOneBatchEachAndNothingCommitted() throws {
            let db = dir.file("kill.db")
            let interval = 20 * ms, flush = 200 * ms
            // One batch is flush / interval probes per target; the bound adds
            // the commit itself and the writer's wake-up (100 ms).
            let batchBound = (flush + 100 * ms) / interval
            var random = SplitMix64(seed: 4)
            var committed: [Int64: Int] = [:]  // session id -> probes it has in the database
            var firstStart: Int64 = .max
            for cycle in 0..<20 {
                let recorder = try Recorder(
                    ["127.0.0.1", "six=::1", "--interval", "20ms", "--flush", "200ms", "--db", db],
                    logPath: dir.file("kill-\(cycle).log"))
                pause(Int64.random(in: 500...1500, using: &random) * ms)
                let killedAt = wallNow()
                recorder.signal(SIGKILL)
                recorder.process.waitUntilExit()
                #expect(recorder.process.terminationReason == .uncaughtSignal)

                #expect(try sql(db, "PRAGMA integrity_check") == [["ok"]], "cycle \(cycle)")
                let all = try sessions(db)
                #expect(all.count == cycle + 1, "cycle \(cycle): one session per start")
                guard let session = all.last else { continue }
                firstStart = min(firstStart, all[0].startedNs)
                #expect(session.stoppedNs == nil, "a killed session has no clean stop")
                // Everything committed by earlier recorders is still there.
                for (earlier, next) in zip(all, all.dropFirst()) {
                    let count = try placedProbes(db, session: earlier, until: next.startedNs).values.map(\.count).reduce(0, +)
                    #expect(count == committed[earlier.id], "cycle \(cycle): session \(earlier.id) changed")
                }
                // This session: whole batches only (slots 0..<n, no hole), and
                // at most one batch short of what was due when it died.
                let placed = try placedProbes(db, session: session)
                var total = 0
                for (target, offset) in try offsets(db, session: session.id) {
                    let probes = placed[target] ?? []
                    #expect(probes.map(\.slot) == Array(0..<Int64(probes.count)), "cycle \(cycle): a hole in target \(target)")
                    let missing = slotsDue(by: killedAt, session: session, offset: offset) - Int64(probes.count)
                    #expect(missing >= 0 && missing <= batchBound,
                            "cycle \(cycle): \(missing) probes of target \(target) lost, more than one batch")
                    total += probes.count
                }
                committed[session.id] = total
            }

            // The report over all 20 runs: nothing lost, no outage, and the
            // dead time between runs lowers coverage.
            let all = try sessions(db)
            let r = try report(db, since: firstStart, until: all.last!.heartbeatNs)
            #expect(r.targets.count == 2)
            let stored = committed.values.reduce(0, +)
            #expect(r.targets.map(\.summary.sent).reduce(0, +) == stored)
            for t in r.targets {
                #expect(t.summary.lost == 0, "\(t.target): false loss")
                #expect(t.outages.isEmpty, "\(t.target): false outage")
                #expect(t.summary.received + t.summary.unknown == t.summary.sent)
                #expect(t.summary.coverage < 1)
                #expect(t.summary.coverage > 0)
            }
        }
    }
}
