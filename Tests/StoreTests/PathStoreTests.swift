// Path rounds in the store (schema 7): written in the recorder's batches,
// read back exactly in (target, round, ttl) order, pruned with the probes.
import Testing
import TestSupport
@testable import Store

@Suite struct PathStoreTests {
    let folder = TemporaryFolder()
    static let hourNs: Int64 = 3_600_000_000_000
    static let start: Int64 = 1_764_000_000 * 1_000_000_000 / hourNs * hourNs

    /// A round of three probes: two routers' time exceeded, the target's echo reply.
    static func round(target: Int64, at roundNs: Int64, lostTarget: Bool = false) -> [PathProbeRecord] {
        [
            PathProbeRecord(targetID: target, roundNs: roundNs, ttl: 1, toTarget: false, sentNs: roundNs,
                            receivedNs: roundNs + 1_200_000, from: "198.18.0.101", answer: .timeExceeded, icmpType: 11, icmpCode: 0),
            PathProbeRecord(targetID: target, roundNs: roundNs, ttl: 2, toTarget: false, sentNs: roundNs + 20_000),
            lostTarget
                ? PathProbeRecord(targetID: target, roundNs: roundNs, ttl: 3, toTarget: true, sentNs: roundNs + 40_000, sendError: 101)
                : PathProbeRecord(targetID: target, roundNs: roundNs, ttl: 3, toTarget: true, sentNs: roundNs + 40_000,
                                  receivedNs: roundNs + 9_000_000, from: "fd00:18::60", answer: .echoReply, icmpType: 129, icmpCode: 0),
        ]
    }

    @Test func roundsComeBackExactlyInTargetRoundTTLOrder() throws {
        let db = try Database(path: folder.file("p.db"), mode: .readWrite)
        let a = try db.target(name: "a", host: "a").id, b = try db.target(name: "b", host: "b").id
        let session = try db.beginSession(sampleSession, targets: [])
        var first = WriteBatch()
        first.pathProbes = Self.round(target: b, at: Self.start + 5) + Self.round(target: a, at: Self.start + 7, lostTarget: true)
        first.pathHops = [PathHopRecord(targetID: a, ttl: 1, sinceNs: Self.start + 7, address: "198.18.0.101")]
        try db.write(first, session: session)
        var second = WriteBatch()
        second.pathProbes = Self.round(target: a, at: Self.start + 1_000_000_007)
        second.pathHops = [PathHopRecord(targetID: a, ttl: 1, sinceNs: Self.start + 1_000_000_007, address: "198.18.0.111")]
        try db.write(second, session: session)

        let all = try db.pathProbes(targets: nil, from: .min, to: .max)
        let expected = Self.round(target: a, at: Self.start + 7, lostTarget: true) + Self.round(target: a, at: Self.start + 1_000_000_007)
            + Self.round(target: b, at: Self.start + 5)
        #expect(all == expected)
        #expect(try db.pathProbes(targets: [b], from: .min, to: .max) == Self.round(target: b, at: Self.start + 5))
        #expect(try db.pathProbes(targets: nil, from: Self.start + 6, to: Self.start + 8).count == 3, "by round_ns, half open")
        #expect(try db.pathHops(targets: [a]).map(\.address) == ["198.18.0.101", "198.18.0.111"])
        #expect(try db.pathHops(targets: [b]).isEmpty)
    }

    @Test func pruneDeletesRoundsWithTheProbesOfTheirTime() throws {
        let db = try Database(path: folder.file("p.db"), mode: .readWrite)
        let a = try db.target(name: "a", host: "a").id
        let session = try db.beginSession(sampleSession, targets: [])
        var batch = WriteBatch()
        for minute in 0..<240 {
            let t = Self.start + Int64(minute) * 60_000_000_000
            batch.probes.append(ProbeRecord(sentNs: t, targetID: a, rttNs: 1_000_000))
            if minute % 10 == 0 { batch.pathProbes += Self.round(target: a, at: t + 1) }
        }
        try db.write(batch, session: session)
        let cutoff = Self.start + 2 * Self.hourNs
        while try !db.pruneStep(sentBefore: cutoff).done {}
        let left = try db.pathProbes(targets: nil, from: .min, to: .max)
        #expect(left.count == 12 * 3)
        #expect(left.allSatisfy { $0.roundNs >= cutoff })
    }
}
