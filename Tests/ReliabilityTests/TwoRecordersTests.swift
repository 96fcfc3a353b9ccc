// Two recorders on one host (a namespace of our own, so both use raw
// sockets, which see every ICMP packet the host gets), different databases,
// the same target: each counts the other's replies as foreign and stores
// exactly its own.
import Foundation
import Reports
import Testing
import TestSupport

extension Reliability {
    @Suite(needsRoot) struct TwoRecorders {
        let dir = TemporaryFolder()

        @Test func neitherTakesTheOthersReplies() throws {
            let net = try NamespacePair(loopbackOnly: ())
            let dbs = [dir.file("one.db"), dir.file("two.db")]
            let recorders = try dbs.enumerated().map { i, db in
                // No path rounds: the bound on foreign packets below counts the other's probes alone.
                try Recorder(["127.0.0.1", "--interval", "20ms", "--flush", "200ms", "--verbose", "--path-interval", "0", "--db", db],
                             logPath: dir.file("two-\(i).log"), namespace: net.a)
            }
            pause(2 * second)
            for r in recorders { #expect(r.stop(SIGTERM) == 0, "\(r.log)") }

            var runIDs: Set<Int64> = []
            for (db, recorder) in zip(dbs, recorders) {
                let session = try #require(try sessions(db).first)
                runIDs.insert(session.runID)
                #expect(try sql(db, "SELECT socket_kind FROM session") == [["raw"]])
                // The other recorder's replies reached this socket and were counted, not stored.
                #expect(session.foreignPackets > 0, "\(db): no foreign packets seen")
                // Reply rows are only first replies that came after their probe's
                // batch was cut (a loaded machine); none is a second reply.
                #expect(try sqlInt(db, "SELECT count(*) FROM reply JOIN probe USING (sent_ns, target_id) WHERE probe.rtt_ns IS NOT NULL") == 0)
                #expect(try sqlInt(db, "SELECT count(*) FROM (SELECT 1 FROM reply GROUP BY sent_ns, target_id HAVING count(*) > 1)") == 0)
                let sentLines = recorder.logLines(containing: ": probe ").filter { $0.hasSuffix(" sent") }.count
                let replyLines = recorder.logLines(containing: ": reply to probe ").count
                let r = try report(db, since: session.startedNs, until: session.stoppedNs!)
                let s = try #require(r.targets.first?.summary)
                #expect(s.sent == sentLines && s.sent >= 50)
                #expect(s.received == replyLines && s.received == s.sent)
                #expect(s.lost == 0 && s.duplicates == 0 && s.unknown == 0)
            }
            #expect(runIDs.count == 2)
            // Foreign here is the other's replies: at least every reply to a
            // probe it sent while this one listened, at most all of them.
            for (mine, other) in [(dbs[0], dbs[1]), (dbs[1], dbs[0])] {
                let me = try #require(try sessions(mine).first)
                let overlapping = try sqlInt(other, "SELECT count(*) FROM probe WHERE sent_ns >= \(me.startedNs) AND sent_ns < \(me.stoppedNs! - 50 * ms)")
                let total = try sqlInt(other, "SELECT count(*) FROM probe")
                #expect(me.foreignPackets >= overlapping && me.foreignPackets <= total,
                        "\(me.foreignPackets) foreign, the other sent \(overlapping) while this one ran, \(total) in all")
            }
        }
    }
}
