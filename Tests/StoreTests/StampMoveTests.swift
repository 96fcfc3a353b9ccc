// Replies and ICMP errors carry their probe's original stamp; a probe moved
// off a taken key (StampCollisionTests) must get them, in its own batch or
// in a later one, and a batch that fails must leave the moves as they were.
import Testing
import Store
import TestSupport

@Suite struct StampMoveTests {
    static let t0: Int64 = 1_767_225_600_000_000_000

    func database(_ folder: TemporaryFolder) throws -> (Database, Int64, Int64) {
        let db = try Database(path: folder.file("p.db"), mode: .readWrite)
        let id = try db.target(name: "t", host: "192.0.2.1").id
        let session = try db.beginSession(
            NewSession(runID: 1, pid: 1, hostname: "h", version: "t", socketKind: "raw", intervalNs: 1_000_000_000,
                       payloadBytes: 56, startedNs: Self.t0), targets: [])
        return (db, session, id)
    }

    func batch(probes: [ProbeRecord] = [], replies: [ReplyRecord] = [], errors: [ICMPErrorRecord] = []) -> WriteBatch {
        var b = WriteBatch()
        b.probes = probes; b.replies = replies; b.icmpErrors = errors; b.heartbeatNs = Self.t0
        return b
    }

    @Test func repliesAndErrorsOfAMovedProbeLandOnIt() throws {
        let folder = TemporaryFolder()
        let (db, session, id) = try database(folder)
        var moves = StampMoves(windowNs: 600_000_000_000)
        try db.write(batch(probes: [ProbeRecord(sentNs: Self.t0, targetID: id, rttNs: 5_000_000)]),
                     session: session, moves: &moves, nowNs: 0)
        #expect(moves.count == 0)
        // The step back: the same stamp again, and a duplicate reply of the
        // new probe in the same batch.
        try db.write(batch(probes: [ProbeRecord(sentNs: Self.t0, targetID: id, rttNs: 7_000_000)],
                           replies: [ReplyRecord(sentNs: Self.t0, targetID: id, rttNs: 9_000_000)]),
                     session: session, moves: &moves, nowNs: 1)
        #expect(moves.count == 1)
        let error = ICMPErrorRecord(sentNs: Self.t0, targetID: id, rttNs: 11_000_000, family: 4, type: 3, code: 1,
                                    source: "192.0.2.9")
        // A batch for a session that does not exist fails: no move is added or lost.
        var before = moves
        #expect(throws: StoreError.self) {
            try db.write(batch(probes: [ProbeRecord(sentNs: Self.t0, targetID: id)]), session: 999, moves: &before, nowNs: 2)
        }
        #expect(before.count == 1)
        try db.write(batch(replies: [ReplyRecord(sentNs: Self.t0, targetID: id, rttNs: 10_000_000)], errors: [error]),
                     session: session, moves: &moves, nowNs: 2)
        #expect(try db.replies(from: .min, to: .max, targets: nil)
                == [ReplyRecord(sentNs: Self.t0 + 1, targetID: id, rttNs: 9_000_000),
                    ReplyRecord(sentNs: Self.t0 + 1, targetID: id, rttNs: 10_000_000)])
        #expect(try db.icmpErrors(from: .min, to: .max, targets: nil).map(\.sentNs) == [Self.t0 + 1])
        // After the window the stamp is the old probe's again.
        try db.write(batch(), session: session, moves: &moves, nowNs: 600_000_000_002)
        #expect(moves.count == 0)
    }
}
