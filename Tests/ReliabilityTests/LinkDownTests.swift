// The link under the recorder goes down for 3 s (namespace A's vethA; the
// kernel then drops the connected route too): every probe of that time is a
// row with its errno, counted as lost, the report shows one outage of the
// right length, and the recorder recovers by itself when the link returns.
import Foundation
import Reports
import Testing
import TestSupport

extension Reliability {
    @Suite(needsRoot) struct LinkDown {
        let dir = TemporaryFolder()

        @Test func failedSendsAreLostProbesWithTheirErrnoAndOneOutage() throws {
            let net = try NamespacePair()
            let db = dir.file("link.db")
            let interval = 100 * ms
            let recorder = try Recorder(
                [NamespacePair.targetAddress, "--interval", "100ms", "--flush", "200ms", "--db", db],
                logPath: dir.file("link.log"), namespace: net.a)
            pause(1500 * ms)
            let downFrom = wallNow()
            try must("/usr/sbin/ip", ["-n", net.a, "link", "set", "vethA", "down"])
            let downTo = wallNow()
            pause(3 * second)
            let upFrom = wallNow()
            try must("/usr/sbin/ip", ["-n", net.a, "link", "set", "vethA", "up"])
            let upTo = wallNow()
            // Recovered by itself: replies come back without any restart.
            #expect(waitUntil(5 * second) { recorder.logLines(containing: "sends work again").count == 1 })
            pause(1 * second)
            #expect(recorder.stop(SIGINT) == 0, "\(recorder.log)")

            let session = try #require(try sessions(db).first)
            let probes = try #require(try placedProbes(db, session: session).values.first)
            let failed = probes.filter { $0.sendError != nil }
            // ENETUNREACH (101): the route went with the link.
            #expect(Set(failed.map(\.sendError)) == [101])
            #expect(failed.allSatisfy { $0.sentNs >= downFrom && $0.sentNs <= upTo })
            // Every slot of the down time is a failed probe: none skipped.
            #expect(zip(probes, probes.dropFirst()).allSatisfy { $1.slot == $0.slot + 1 })
            let downSlots = Int64(failed.count)
            #expect(downSlots >= (upFrom - downTo) / interval - 1 && downSlots <= (upTo - downFrom) / interval + 1)
            let logged = recorder.logLines(containing: "sends work again after \(failed.count) failed probes")
            #expect(logged.count == 1, "\(recorder.logLines(containing: "sends work again"))")

            let r = try report(db, since: session.startedNs, until: session.stoppedNs!)
            let t = try #require(r.targets.first)
            // Lost: the failed sends, plus at most the one probe in flight
            // when the link went down (its reply had no way back).
            #expect(t.summary.lost >= failed.count && t.summary.lost <= failed.count + 1)
            #expect(t.summary.errors == failed.count)
            #expect(t.summary.errorKinds.values.reduce(0, +) == failed.count)
            #expect(t.summary.unknown == 0)
            #expect(t.summary.received == t.summary.sent - t.summary.lost)
            #expect(t.outages.count == 1)
            if let outage = t.outages.first {
                #expect(outage.lost == t.summary.lost)
                // The outage spans the down time, to one interval.
                #expect(outage.start >= downFrom - interval && outage.start <= downTo + interval)
                #expect(outage.end >= upFrom - interval && outage.end <= upTo + interval)
            }
        }
    }
}
