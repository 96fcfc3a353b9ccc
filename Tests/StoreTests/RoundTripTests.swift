import Foundation
import Testing
import TestSupport
import Store

/// Everything the recorder writes comes back, whole and in order.
@Suite struct RoundTripTests {
    let folder = TemporaryFolder()
    var path: String { folder.file("pingem.db") }

    @Test func targetsAreFoundByNameAndTakeTheLatestHost() throws {
        let database = try Database(path: path, mode: .readWrite)
        let a = try database.target(name: "router", host: "192.0.2.1")
        let b = try database.target(name: "dns", host: "dns.example")
        let again = try database.target(name: "router", host: "192.0.2.254")
        #expect(again.id == a.id)
        #expect(a.id != b.id)
        #expect(try database.targets() == [
            TargetRecord(id: a.id, name: "router", host: "192.0.2.254"),
            TargetRecord(id: b.id, name: "dns", host: "dns.example"),
        ])
    }

    @Test func everyRecordTypeRoundTrips() throws {
        let database = try Database(path: path, mode: .readWrite)
        let a = try database.target(name: "a", host: "192.0.2.1").id
        let b = try database.target(name: "b", host: "2001:db8::1").id
        let t0 = sampleSession.startedNs
        let session = try database.beginSession(sampleSession, targets: [
            SessionTargetRecord(sessionID: 0, targetID: b, offsetNs: 500_000_000),
            SessionTargetRecord(sessionID: 0, targetID: a, offsetNs: 0),
        ])

        var first = WriteBatch()
        first.probes = [
            ProbeRecord(sentNs: t0 + 1, targetID: a, rttNs: 20_123_456),
            ProbeRecord(sentNs: t0 + 500_000_001, targetID: b),
            ProbeRecord(sentNs: t0 + 1_000_000_001, targetID: a, sendError: 101),
            ProbeRecord(sentNs: t0 + 1_500_000_001, targetID: b, sendError: sendErrorUnresolved),
        ]
        first.addresses = [AddressRecord(targetID: a, sinceNs: t0, address: "192.0.2.1"),
                           AddressRecord(targetID: b, sinceNs: t0, address: "2001:db8::1")]
        first.gaps = [GapRecord(sessionID: session, startNs: t0 + 2_000_000_000, endNs: t0 + 3_000_000_000, reason: .stalled)]
        first.foreignPackets = 3
        first.heartbeatNs = t0 + 2_000_000_000
        try database.write(first, session: session)

        var second = WriteBatch()
        second.probes = [ProbeRecord(sentNs: t0 + 5_000_000_001, targetID: a, rttNs: 19_999_999)]
        second.replies = [
            ReplyRecord(sentNs: t0 + 500_000_001, targetID: b, rttNs: 1_700_000_000),  // late
            ReplyRecord(sentNs: t0 + 1, targetID: a, rttNs: 20_500_000),               // duplicate
        ]
        second.icmpErrors = [ICMPErrorRecord(sentNs: t0 + 1_000_000_001, targetID: a, rttNs: 3_000_000,
                                             family: 4, type: 3, code: 1, source: "198.51.100.7"),
                             ICMPErrorRecord(sentNs: t0 + 500_000_001, targetID: b, rttNs: 4_000_000,
                                             family: 6, type: 1, code: 3, source: "2001:db8::ff")]
        // Same (target, since) again: the first address is kept.
        second.addresses = [AddressRecord(targetID: a, sinceNs: t0, address: "192.0.2.99"),
                            AddressRecord(targetID: a, sinceNs: t0 + 4_000_000_000, address: "192.0.2.2")]
        // Same start: the gap grew, the new end replaces the old.
        second.gaps = [GapRecord(sessionID: session, startNs: t0 + 2_000_000_000, endNs: t0 + 5_000_000_000, reason: .stalled),
                       GapRecord(sessionID: session, startNs: t0 + 6_000_000_000, endNs: t0 + 7_000_000_000, reason: .dropped)]
        second.foreignPackets = 4
        second.heartbeatNs = t0 + 5_500_000_000
        try database.write(second, session: session)

        var probes: [ProbeRecord] = []
        try database.forEachProbe(from: .min, to: .max, targets: nil) { probes.append($0) }
        #expect(probes == first.probes + second.probes)
        #expect(try database.replies(from: .min, to: .max, targets: nil) == second.replies.reversed())
        #expect(try database.icmpErrors(from: .min, to: .max, targets: nil) == second.icmpErrors.reversed())
        #expect(try database.addresses(target: a) == [first.addresses[0], second.addresses[1]])
        #expect(try database.addresses(target: b) == [first.addresses[1]])
        #expect(try database.gaps(overlapping: .min, .max) == second.gaps)
        #expect(try database.sessionTargets(sessions: [session]) == [
            SessionTargetRecord(sessionID: session, targetID: a, offsetNs: 0),
            SessionTargetRecord(sessionID: session, targetID: b, offsetNs: 500_000_000),
        ])

        var expected = SessionRecord(
            id: session, runID: sampleSession.runID, pid: 4242, hostname: "probe-host", version: "0.1.0",
            socketKind: "datagram", intervalNs: 1_000_000_000, payloadBytes: 56, startedNs: t0,
            heartbeatNs: t0 + 5_500_000_000, stoppedNs: nil, foreignPackets: 7)
        #expect(try database.sessions(overlapping: .min, .max) == [expected])

        try database.endSession(session, stoppedNs: t0 + 6_000_000_000)
        expected.stoppedNs = t0 + 6_000_000_000
        expected.heartbeatNs = t0 + 6_000_000_000
        #expect(try database.sessions(overlapping: .min, .max) == [expected])

        // A reader in another connection sees the same.
        let reader = try Database(path: path, mode: .readOnly)
        #expect(try reader.sessions(overlapping: .min, .max) == [expected])
        #expect(try reader.targets() == database.targets())

        let status = try reader.statusSummary()
        #expect(status.latestSession == expected)
        #expect(status.latestSessionTargets == ["a", "b"])
        #expect(status.probeCount == 5)
        #expect(status.replyCount == 4)   // 2 in probe rows + 2 reply rows
        #expect(status.lastProbeSentNs == t0 + 5_000_000_001)
        #expect(status.pageSize > 0 && status.pageCount > 0)
        #expect(status.fileBytes >= Int64(fileBytes(path)?.count ?? 0))
    }

    @Test func readersKeepTimeAndTargetOrderAndFilter() throws {
        let database = try Database(path: path, mode: .readWrite)
        let a = try database.target(name: "a", host: "a").id
        let b = try database.target(name: "b", host: "b").id
        let session = try database.beginSession(sampleSession, targets: [])
        // Written out of order on purpose: readers sort, whatever the insert order.
        var batch = WriteBatch()
        batch.probes = [ProbeRecord(sentNs: 30, targetID: a), ProbeRecord(sentNs: 10, targetID: b),
                        ProbeRecord(sentNs: 10, targetID: a), ProbeRecord(sentNs: 20, targetID: b),
                        ProbeRecord(sentNs: 40, targetID: b)]
        batch.replies = [ReplyRecord(sentNs: 20, targetID: b, rttNs: 9), ReplyRecord(sentNs: 10, targetID: b, rttNs: 7),
                         ReplyRecord(sentNs: 20, targetID: b, rttNs: 5), ReplyRecord(sentNs: 10, targetID: a, rttNs: 8)]
        batch.icmpErrors = [ICMPErrorRecord(sentNs: 40, targetID: b, rttNs: 2, family: 4, type: 11, code: 0, source: "r"),
                            ICMPErrorRecord(sentNs: 30, targetID: a, rttNs: 1, family: 4, type: 3, code: 0, source: "r")]
        try database.write(batch, session: session)

        func probes(_ from: Int64, _ to: Int64, _ targets: Set<Int64>?) throws -> [[Int64]] {
            var rows: [[Int64]] = []
            try database.forEachProbe(from: from, to: to, targets: targets) { rows.append([$0.sentNs, $0.targetID]) }
            return rows
        }
        #expect(try probes(.min, .max, nil) == [[10, a], [10, b], [20, b], [30, a], [40, b]])
        #expect(try probes(10, 40, nil) == [[10, a], [10, b], [20, b], [30, a]])   // half-open
        #expect(try probes(.min, .max, [b]) == [[10, b], [20, b], [40, b]])
        #expect(try probes(.min, .max, []) == [])

        #expect(try database.replies(from: .min, to: .max, targets: nil).map { [$0.sentNs, $0.targetID, $0.rttNs] }
                == [[10, a, 8], [10, b, 7], [20, b, 5], [20, b, 9]])
        #expect(try database.replies(from: 11, to: .max, targets: [b]).map(\.rttNs) == [5, 9])
        #expect(try database.icmpErrors(from: .min, to: .max, targets: nil).map(\.sentNs) == [30, 40])
        #expect(try database.icmpErrors(from: .min, to: .max, targets: [a]).map(\.type) == [3])
    }

    @Test func nestedReadsOfTheSameQueryDoNotDisturbEachOther() throws {
        let database = try Database(path: path, mode: .readWrite)
        let a = try database.target(name: "a", host: "a").id
        let session = try database.beginSession(sampleSession, targets: [])
        var batch = WriteBatch()
        batch.probes = (1...3).map { ProbeRecord(sentNs: Int64($0), targetID: a) }
        try database.write(batch, session: session)
        var pairs: [[Int64]] = []
        try database.forEachProbe(from: .min, to: .max, targets: nil) { outer in
            try database.forEachProbe(from: .min, to: .max, targets: nil) { inner in
                pairs.append([outer.sentNs, inner.sentNs])
            }
        }
        #expect(pairs.count == 9)
        #expect(pairs.last == [3, 3])
    }

    @Test func sessionsAndGapsOverlapHalfOpenRanges() throws {
        let database = try Database(path: path, mode: .readWrite)
        var early = sampleSession
        early.startedNs = 100
        let stopped = try database.beginSession(early, targets: [])
        try database.endSession(stopped, stoppedNs: 200)
        var late = sampleSession
        late.startedNs = 300
        let crashed = try database.beginSession(late, targets: [])
        var batch = WriteBatch()
        batch.heartbeatNs = 400   // its last sign of life
        batch.gaps = [GapRecord(sessionID: crashed, startNs: 320, endNs: 340, reason: .stalled)]
        try database.write(batch, session: crashed)

        func ids(_ from: Int64, _ to: Int64) throws -> [Int64] { try database.sessions(overlapping: from, to).map(\.id) }
        #expect(try ids(0, 100) == [])
        #expect(try ids(0, 101) == [stopped])
        #expect(try ids(199, 300) == [stopped])
        #expect(try ids(200, 300) == [])
        #expect(try ids(150, 350) == [stopped, crashed])
        #expect(try ids(399, 1000) == [crashed])
        #expect(try ids(400, 1000) == [])
        #expect(try database.gaps(overlapping: 0, 320).isEmpty)
        #expect(try database.gaps(overlapping: 339, 340).count == 1)
        #expect(try database.gaps(overlapping: 340, 400).isEmpty)
    }

    @Test func aFailedBatchWritesNothing() throws {
        let database = try Database(path: path, mode: .readWrite)
        let a = try database.target(name: "a", host: "a").id
        let session = try database.beginSession(sampleSession, targets: [])
        var good = WriteBatch()
        good.probes = [ProbeRecord(sentNs: 1, targetID: a)]
        good.heartbeatNs = 10
        try database.write(good, session: session)

        var bad = WriteBatch()
        // The second probe's key is taken (stored 1 ns later: StampCollisionTests);
        // the batch fails at its last statement, after every row went in: no session.
        bad.probes = [ProbeRecord(sentNs: 2, targetID: a), ProbeRecord(sentNs: 1, targetID: a)]
        bad.replies = [ReplyRecord(sentNs: 1, targetID: a, rttNs: 5)]
        bad.foreignPackets = 9
        bad.heartbeatNs = 20
        let error = #expect(throws: StoreError.self) { try database.write(bad, session: session + 100) }
        #expect(error?.resultCode.primary == .notFound)

        var unknown = WriteBatch()
        unknown.probes = [ProbeRecord(sentNs: 3, targetID: a)]
        #expect(throws: StoreError.self) { try database.write(unknown, session: session + 100) }

        var count = 0
        try database.forEachProbe(from: .min, to: .max, targets: nil) { _ in count += 1 }
        #expect(count == 1)
        #expect(try database.replies(from: .min, to: .max, targets: nil).isEmpty)
        let row = try database.sessions(overlapping: .min, .max).first
        #expect(row?.heartbeatNs == 10)
        #expect(row?.foreignPackets == 0)
        // The connection is usable again: no transaction was left open.
        try database.write(good.withProbe(ProbeRecord(sentNs: 5, targetID: a)), session: session)
    }

    @Test func anOpenReaderNeverBlocksTheWriter() throws {
        let database = try Database(path: path, mode: .readWrite)
        let a = try database.target(name: "a", host: "a").id
        let session = try database.beginSession(sampleSession, targets: [])
        var batch = WriteBatch()
        batch.probes = [ProbeRecord(sentNs: 1, targetID: a), ProbeRecord(sentNs: 2, targetID: a)]
        try database.write(batch, session: session)

        let reader = try Database(path: path, mode: .readOnly)
        var seen: [Int64] = []
        try reader.forEachProbe(from: .min, to: .max, targets: nil) { probe in
            seen.append(probe.sentNs)
            // The reader is mid-scan, holding its snapshot: the writer commits anyway.
            var more = WriteBatch()
            more.probes = [ProbeRecord(sentNs: 100 + probe.sentNs, targetID: a)]
            try database.write(more, session: session)
        }
        #expect(seen == [1, 2])   // its snapshot, not the rows committed meanwhile
        var after = 0
        try reader.forEachProbe(from: .min, to: .max, targets: nil) { _ in after += 1 }
        #expect(after == 4)
        #expect(throws: StoreError.self) { _ = try reader.target(name: "x", host: "x") }
    }
}

extension WriteBatch {
    func withProbe(_ probe: ProbeRecord) -> WriteBatch {
        var batch = self
        batch.probes = [probe]
        return batch
    }
}

@Suite struct StatusTests {
    @Test func statusOfAFreshDatabase() throws {
        let folder = TemporaryFolder()
        let path = folder.file("pingem.db")
        let database = try Database(path: path, mode: .readWrite)
        let status = try database.statusSummary()
        #expect(status.latestSession == nil)
        #expect(status.latestSessionTargets.isEmpty)
        #expect(status.probeCount == 0 && status.replyCount == 0)
        #expect(status.lastProbeSentNs == nil)
        #expect(status.fileBytes == Int64(fileBytes(path)!.count) + Int64(fileBytes(path + "-wal")?.count ?? 0))
        #expect(status.pageCount > 0)
        withExtendedLifetime(database) {}
    }

    @Test func latestSessionAndTargetsOfEachSession() throws {
        let folder = TemporaryFolder()
        let database = try Database(path: folder.file("pingem.db"), mode: .readWrite)
        let a = try database.target(name: "a", host: "a").id
        let b = try database.target(name: "b", host: "b").id
        var first = sampleSession
        first.startedNs = 10
        let one = try database.beginSession(first, targets: [SessionTargetRecord(sessionID: 0, targetID: a, offsetNs: 0)])
        var second = sampleSession
        second.startedNs = 20
        let two = try database.beginSession(second, targets: [
            SessionTargetRecord(sessionID: 0, targetID: a, offsetNs: 7),
            SessionTargetRecord(sessionID: 0, targetID: b, offsetNs: 3),
        ])
        #expect(try database.sessionTargets(sessions: [two, one]) == [
            SessionTargetRecord(sessionID: two, targetID: b, offsetNs: 3),
            SessionTargetRecord(sessionID: two, targetID: a, offsetNs: 7),
            SessionTargetRecord(sessionID: one, targetID: a, offsetNs: 0),
        ])
        let status = try database.statusSummary()
        #expect(status.latestSession?.id == two)
        #expect(status.latestSessionTargets == ["b", "a"])
    }
}
