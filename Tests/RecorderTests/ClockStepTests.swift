// The wall clock stepped back under a running recorder: new probes get the
// exact stamps of older ones of their targets, and every probe is stored.
import Foundation
import Testing
@testable import Recorder
import Store

@Suite struct ClockStepTests {
    @Test func probesStampedLikeOlderOnesAreAllStored() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pingem-step-\(UUID().uuidString).db").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let db = try Database(path: path, mode: .readWrite)
        let h = Harness(targets: 2, interval: second)
        let ids = try ["t0", "t1"].map { try db.target(name: $0, host: $0).id }
        #expect(ids == [1, 2])  // the harness's target ids
        let session = try db.beginSession(
            NewSession(runID: Harness.runID, pid: 1, hostname: "h", version: "t", socketKind: "raw", intervalNs: second,
                       payloadBytes: 56, startedNs: h.clock.wallNs()), targets: [])
        h.run(until: h.start + 10 * second)
        let before = h.engine.cutBatch()
        try db.write(before, session: session)
        // NTP steps the clock back by exactly 5 intervals: the next five
        // probes of each target repeat the stamps of probes 5 to 9.
        h.clock.stepWall(-5 * second)
        h.run(until: h.start + 20 * second)
        let after = h.engine.cutBatch()
        let repeated = Set(before.probes.map { "\($0.targetID) \($0.sentNs)" })
            .intersection(after.probes.map { "\($0.targetID) \($0.sentNs)" })
        #expect(repeated.count == 2 * 5)
        try db.write(after, session: session)

        var stored: [ProbeRecord] = []
        try db.forEachProbe(from: .min, to: .max, targets: nil) { stored.append($0) }
        #expect(stored.count == before.probes.count + after.probes.count)
        #expect(stored.count == h.transport.sent.withLock { $0.count })
        // Each target's probes in send order, moved by at most a nanosecond.
        for id in ids {
            let mine = stored.filter { $0.targetID == id }.map(\.sentNs).sorted()
            let sent = (before.probes + after.probes).filter { $0.targetID == id }.map(\.sentNs).sorted()
            #expect(Set(mine).count == mine.count)
            #expect(zip(mine, sent).allSatisfy { $0 - $1 >= 0 && $0 - $1 <= 1 })
        }
    }
}
