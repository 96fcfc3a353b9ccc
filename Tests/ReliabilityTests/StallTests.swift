// SIGSTOP for 3 s, then SIGCONT: the missed slots are skipped (one `gap`
// row), not sent in a burst; the stopped time is no data, never loss; and
// the replies that waited in the socket buffer keep their true RTT.
import Foundation
import Reports
import Testing
import TestSupport

extension Reliability {
    @Suite(needsRoot) struct Stall {
        let dir = TemporaryFolder()

        @Test func aStoppedRecorderSkipsItsMissedSlotsAndRecordsNoData() throws {
            let db = dir.file("stall.db")
            let interval = 20 * ms
            let recorder = try Recorder(["127.0.0.1", "six=::1", "--interval", "20ms", "--flush", "200ms", "--db", db],
                                        logPath: dir.file("stall.log"))
            pause(1 * second)
            let stoppedAt = wallNow()
            recorder.signal(SIGSTOP)
            pause(3 * second)
            let continuedAt = wallNow()
            recorder.signal(SIGCONT)
            pause(1 * second)
            #expect(recorder.stop(SIGINT) == 0, "\(recorder.log)")

            let session = try #require(try sessions(db).first)
            let gaps = try sql(db, "SELECT start_ns, end_ns, reason FROM gap WHERE session_id = \(session.id)")
            #expect(gaps.count == 1, "one stall, one gap row: \(gaps)")
            let gapStart = Int64(gaps[0][0])!, gapEnd = Int64(gaps[0][1])!
            #expect(gaps[0][2] == "stalled")
            // The gap covers the stop: it starts at the first missed slot
            // (at most one interval after SIGSTOP) and ends at the resume.
            #expect(gapStart <= stoppedAt + interval)
            #expect(gapEnd >= continuedAt)
            #expect(gapStart >= stoppedAt - 200 * ms)
            #expect(recorder.logLines(containing: "schedule stalled for").count == 1)

            // No burst: every target's slots strictly increase by one, except
            // the single jump over the gap; the first probe after the resume
            // is on the grid (less than one interval after its slot).
            let placed = try placedProbes(db, session: session)
            #expect(placed.count == 2)
            for (target, probes) in placed {
                let steps = zip(probes, probes.dropFirst()).map { $1.slot - $0.slot }
                #expect(steps.filter { $0 != 1 }.count == 1, "target \(target): steps \(Set(steps))")
                #expect(steps.allSatisfy { $0 >= 1 }, "target \(target): two probes in one slot (a burst)")
                let jump = try #require(steps.firstIndex { $0 != 1 })
                let skipped = steps[jump] - 1
                #expect(skipped >= (3 * second - 200 * ms) / interval, "target \(target): only \(skipped) slots skipped")
                let resumed = probes[jump + 1]
                #expect(resumed.sentNs >= gapEnd - interval && resumed.lateNs < interval)
                // One probe per target in the first interval after the resume.
                #expect(probes.filter { $0.sentNs >= resumed.sentNs && $0.sentNs < resumed.sentNs + interval - resumed.lateNs }.count == 1)
            }

            let r = try report(db, since: session.startedNs, until: session.stoppedNs!)
            for t in r.targets {
                #expect(t.summary.lost == 0, "\(t.target): the stop counted as loss")
                #expect(t.summary.unknown == 0)
                #expect(t.outages.isEmpty)
                // Covered: the session minus the gap, exactly.
                let expected = Double(session.stoppedNs! - session.startedNs - (gapEnd - gapStart))
                    / Double(session.stoppedNs! - session.startedNs)
                #expect(abs(t.summary.coverage - expected) < 1e-9)
                #expect(t.summary.coverage < 0.7)
                // Replies read after the resume keep the kernel's RTT: loopback
                // answers in well under a millisecond, never in seconds.
                #expect((t.summary.rtt.max ?? .infinity) < 1000)
            }
        }
    }
}
