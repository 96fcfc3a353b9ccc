// A backward wall-clock step moves a new probe off its older twin's key
// (Database.write, 1 ns later); the reply that comes after the probe's
// batch was written still carries the original stamp in its payload. It
// must land on the moved probe, not become a second reply of the old one.
import Testing
@testable import Recorder
import Store
import TestSupport

@Suite struct MovedStampReplyTests {
    /// What the writer does at each --flush deadline; true when it committed.
    func flush(_ writer: inout Writer) -> Bool {
        writer.drain()
        return writer.commit()
    }

    @Test func aReplyInALaterBatchLandsOnTheMovedProbe() throws {
        let folder = TemporaryFolder()
        let db = try Database(path: folder.file("p.db"), mode: .readWrite)
        let h = Harness(targets: 1, interval: second)
        #expect(try db.target(name: "t0", host: "t0").id == 1)  // the harness's target id
        let session = try db.beginSession(
            NewSession(runID: Harness.runID, pid: 1, hostname: "h", version: "t", socketKind: "raw", intervalNs: second,
                       payloadBytes: 56, startedNs: h.clock.wallNs()), targets: [])
        var writer = Writer(store: db, source: h.engine, clock: h.clock, sessionID: session, flushNs: second,
                            maxHeldProbes: 1_000_000, databasePath: "p.db",
                            matchWindowNs: h.engine.config.matchWindowNs, log: { _ in })
        // Probes 0...9, probe 5 answered in 20 ms, in its own batch.
        h.run(until: h.start + 9 * second)
        let old = h.transport.sent.withLock { $0[5] }
        h.engine.handle([h.reply(to: old)])
        #expect(flush(&writer))

        // The clock steps back 5 s: probes 10...14 repeat the stamps of 5...9.
        h.clock.stepWall(-5 * second)
        h.run(until: h.start + 14 * second)
        #expect(flush(&writer))
        #expect(writer.stampMoves.count == 5)

        // Probe 10's reply, after its batch (4.03 s after it was sent).
        let moved = h.transport.sent.withLock { $0[10] }
        h.clock.advance(30 * ms)
        h.engine.handle([h.reply(to: moved)])
        writer.drain()
        #expect(writer.pending.replies.count == 1)
        #expect(flush(&writer))

        var probes: [ProbeRecord] = []
        try db.forEachProbe(from: .min, to: .max, targets: nil) { probes.append($0) }
        let replies = try db.replies(from: .min, to: .max, targets: nil)
        #expect(probes.count == 15)
        let oldStamp = probes.filter { $0.rttNs != nil }.map(\.sentNs).min()!
        let rows = Dictionary(grouping: replies, by: \.sentNs)
        func answers(_ sentNs: Int64) -> ProbeAnswers {
            let probe = probes.first { $0.sentNs == sentNs }!
            let mine = rows[sentNs].map { reps in reps.dropFirst().reduce(into: ReplyRows(reps[0].rttNs)) { $0.add($1.rttNs) } }
            return ProbeAnswers(probe, replyRows: mine, icmpError: nil)
        }
        // The old probe keeps its one reply; the moved one (1 ns later) has its own.
        #expect(answers(oldStamp).replies == 1)
        #expect(answers(oldStamp).firstReplyNs == probes.first { $0.sentNs == oldStamp }!.rttNs)
        #expect(answers(oldStamp + 1).replies == 1)
        #expect(answers(oldStamp + 1).verdict(sentNs: oldStamp + 1, sessionEndNs: .max, timeoutNs: 10 * second) == .received)
        #expect(replies.map(\.sentNs) == [oldStamp + 1])
    }

    @Test func movesOlderThanTheMatchWindowAreForgotten() throws {
        let folder = TemporaryFolder()
        let db = try Database(path: folder.file("p.db"), mode: .readWrite)
        let h = Harness(targets: 1, interval: second)
        _ = try db.target(name: "t0", host: "t0")
        let session = try db.beginSession(
            NewSession(runID: Harness.runID, pid: 1, hostname: "h", version: "t", socketKind: "raw", intervalNs: second,
                       payloadBytes: 56, startedNs: h.clock.wallNs()), targets: [])
        var writer = Writer(store: db, source: h.engine, clock: h.clock, sessionID: session, flushNs: second,
                            maxHeldProbes: 1_000_000, databasePath: "p.db", matchWindowNs: 60 * second, log: { _ in })
        h.run(until: h.start + 4 * second)
        #expect(flush(&writer))
        h.clock.stepWall(-5 * second)
        h.run(until: h.start + 9 * second)
        #expect(flush(&writer))
        #expect(writer.stampMoves.count == 5)
        h.clock.advance(61 * second)
        #expect(flush(&writer))
        #expect(writer.stampMoves.count == 0)
    }
}
