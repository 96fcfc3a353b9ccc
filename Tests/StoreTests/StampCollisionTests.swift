// A wall clock stepped back can stamp a new probe with the exact sent_ns of
// an older probe of its target. The batch must still be written, whole.
import Testing
import Store
import TestSupport

@Suite struct StampCollisionTests {
    static let t0: Int64 = 1_767_225_600_000_000_000

    func database(_ folder: TemporaryFolder) throws -> (Database, Int64, [Int64]) {
        let db = try Database(path: folder.file("p.db"), mode: .readWrite)
        let ids = try [1, 2].map { try db.target(name: "t\($0)", host: "192.0.2.\($0)").id }
        let session = try db.beginSession(
            NewSession(runID: 1, pid: 1, hostname: "h", version: "t", socketKind: "raw", intervalNs: 1_000_000_000,
                       payloadBytes: 56, startedNs: Self.t0), targets: [])
        return (db, session, ids)
    }

    func stored(_ db: Database) throws -> [ProbeRecord] {
        var probes: [ProbeRecord] = []
        try db.forEachProbe(from: .min, to: .max, targets: nil) { probes.append($0) }
        return probes
    }

    @Test func aProbeWhoseKeyIsTakenIsStoredOneNanosecondLaterWithItsReply() throws {
        let folder = TemporaryFolder()
        let (db, session, ids) = try database(folder)
        var first = WriteBatch()
        first.probes = [ProbeRecord(sentNs: Self.t0, targetID: ids[0], rttNs: 5_000_000),
                        ProbeRecord(sentNs: Self.t0 + 1, targetID: ids[0], rttNs: 6_000_000)]
        first.heartbeatNs = Self.t0 + 1
        try db.write(first, session: session)
        // After the step back: the same stamps again, and the other target's.
        var second = WriteBatch()
        second.probes = [ProbeRecord(sentNs: Self.t0, targetID: ids[0], rttNs: 7_000_000),
                         ProbeRecord(sentNs: Self.t0, targetID: ids[1], rttNs: 8_000_000),
                         ProbeRecord(sentNs: Self.t0 + 1, targetID: ids[0], sendError: 101)]
        second.heartbeatNs = Self.t0 + 2
        try db.write(second, session: session)
        #expect(try stored(db) == [
            ProbeRecord(sentNs: Self.t0, targetID: ids[0], rttNs: 5_000_000),
            ProbeRecord(sentNs: Self.t0, targetID: ids[1], rttNs: 8_000_000),
            ProbeRecord(sentNs: Self.t0 + 1, targetID: ids[0], rttNs: 6_000_000),
            ProbeRecord(sentNs: Self.t0 + 2, targetID: ids[0], rttNs: 7_000_000),
            ProbeRecord(sentNs: Self.t0 + 3, targetID: ids[0], sendError: 101),
        ])
        #expect(try db.sessions(overlapping: .min, .max).first?.heartbeatNs == Self.t0 + 2)
    }
}
