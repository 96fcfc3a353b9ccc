// The hourly summary builder: complete hours only, up to the cutoff, resumed
// where it stopped, empty stretches skipped, every target of an hour at once,
// and the compact encoding gives back what it was given.
import Foundation
import Testing
import TestSupport
@testable import Store

@Suite struct SummaryBuilderTests {
    let folder = TemporaryFolder()

    static let hour: Int64 = 3_600_000_000_000
    static let start = 493_000 * hour  // a whole hour

    /// Hours 0, 1 and 5 hold probes of a (b only in hour 1); 2 to 4 are empty.
    func writeHistory(_ db: Database) throws -> (a: TargetRecord, b: TargetRecord) {
        let hour = Self.hour, start = Self.start
        let a = try db.target(name: "a", host: "10.0.0.1"), b = try db.target(name: "b", host: "10.0.0.2")
        let session = try db.beginSession(
            NewSession(runID: 1, pid: 1, hostname: "h", version: "t", socketKind: "raw",
                       intervalNs: 60_000_000_000, payloadBytes: 56, startedNs: start),
            targets: [SessionTargetRecord(sessionID: 0, targetID: a.id, offsetNs: 0),
                      SessionTargetRecord(sessionID: 0, targetID: b.id, offsetNs: 1_000_000)])
        var batch = WriteBatch()
        for h: Int64 in [0, 1, 5] {
            for m: Int64 in 0..<60 {
                let sent = start + h * hour + m * 60_000_000_000
                batch.probes.append(ProbeRecord(sentNs: sent, targetID: a.id, rttNs: m % 10 == 0 ? nil : 20_000_000 + m))
                if h == 1 { batch.probes.append(ProbeRecord(sentNs: sent + 1_000_000, targetID: b.id, sendError: 101)) }
            }
        }
        batch.replies = [ReplyRecord(sentNs: start, targetID: a.id, rttNs: 3_000_000_000)]  // late
        batch.heartbeatNs = start + 6 * hour
        try db.write(batch, session: session)
        try db.endSession(session, stoppedNs: start + 6 * hour)
        return (a, b)
    }

    @Test func buildsCompleteHoursInOrderAndResumes() throws {
        let db = try Database(path: folder.file("s.db"), mode: .readWrite)
        let (a, b) = try writeHistory(db)
        let hour = Self.hour, start = Self.start

        // Hour 1 is not complete at this cutoff: only hour 0.
        #expect(try db.summarizeHours(endingBy: start + 2 * hour - 1, maxHours: 10) == 1)
        #expect(try db.summarizeHours(endingBy: start + 2 * hour - 1, maxHours: 10) == 0)
        // Then hour 1 (both targets), then straight to hour 5.
        #expect(try db.summarizeHours(endingBy: start + 10 * hour, maxHours: 1) == 1)
        #expect(try db.summarizeHours(endingBy: start + 10 * hour, maxHours: 10) == 1)
        #expect(try db.summarizeHours(endingBy: start + 10 * hour, maxHours: 10) == 0)

        let ofA = try db.summaries(from: start, to: start + 10 * hour, target: a.id)
        #expect(ofA.map(\.hourNs) == [start, start + hour, start + 5 * hour])
        #expect(try db.summaries(from: start, to: start + 10 * hour, target: b.id).map(\.hourNs) == [start + hour])
        let first = ofA[0]
        #expect((first.sent, first.received, first.lost, first.late, first.unknown) == (60, 54, 6, 1, 0))
        #expect(first.minSlowRTT == 3_000_000_000)
        #expect(first.rtt.max == 20_000_059 && first.rtt.min == 20_000_001)
        #expect(first.histogram.map(\.count).reduce(0, +) == 54)
        let ofB = try db.summaries(from: start, to: start + 10 * hour, target: b.id)[0]
        #expect(ofB.failures == [.send(101): 60])
        // The whole hour lost: one run from the first probe to the last, still open.
        #expect(ofB.runs == [LostRun(startNs: start + hour + 1_000_000, lastNs: start + hour + 59 * 60_000_000_000 + 1_000_000, count: 60, endNs: nil)])
        #expect(try db.summarizedCounts(from: start, to: start + 10 * hour, target: a.id) == [start: 60, start + hour: 60, start + 5 * hour: 60])

        // The encoding gives back every field.
        for summary in ofA + [ofB] {
            #expect(try HourSummary(targetID: summary.targetID, hourNs: summary.hourNs, encoded: summary.encoded()) == summary)
        }
    }

    /// The recorder compacts and summarizes in the same step: hours already
    /// moved into blocks are found and summarized exactly as from rows.
    @Test func hoursCompactedFirstAreSummarizedTheSame() throws {
        let plain = try Database(path: folder.file("plain.db"), mode: .readWrite)
        let compacted = try Database(path: folder.file("compacted.db"), mode: .readWrite)
        let (a, b) = try writeHistory(plain)
        _ = try writeHistory(compacted)
        try compacted.compact(hoursEndingBefore: Self.start + 10 * Self.hour, limit: .max)
        #expect(try compacted.blockCount() == 4)
        #expect(try plain.summarizeHours(endingBy: Self.start + 10 * Self.hour, maxHours: 10) == 3)
        #expect(try compacted.summarizeHours(endingBy: Self.start + 10 * Self.hour, maxHours: 10) == 3)
        for target in [a.id, b.id] {
            let fromRows = try plain.summaries(from: .min, to: .max, target: target)
            #expect(!fromRows.isEmpty)
            #expect(try compacted.summaries(from: .min, to: .max, target: target) == fromRows)
        }
    }

    /// Prune summarizes every hour it touches before it deletes any probe of
    /// it, so the summaries it keeps are of whole hours.
    @Test func pruneSummarizesBeforeItDeletes() throws {
        let db = try Database(path: folder.file("p.db"), mode: .readWrite)
        let (a, _) = try writeHistory(db)
        let cutoff = Self.start + Self.hour + 30 * 60_000_000_000  // the middle of hour 1
        while try !db.pruneStep(sentBefore: cutoff).done {}
        #expect(try db.summarizedCounts(from: .min, to: .max, target: a.id) == [Self.start: 60, Self.start + Self.hour: 60])
        var left = 0
        try db.forEachProbe(from: .min, to: .max, targets: [a.id]) { probe in
            #expect(probe.sentNs >= cutoff)
            left += 1
        }
        #expect(left == 30 + 60)
    }

    @Test func aDamagedSummaryIsAnErrorNotANumber() throws {
        var summary = HourSummary(targetID: 1, hourNs: 0)
        summary.sent = 3
        let bytes = summary.encoded()
        #expect(throws: StoreError.self) { try HourSummary(targetID: 1, hourNs: 0, encoded: Array(bytes.dropLast())) }
        #expect(throws: StoreError.self) { try HourSummary(targetID: 1, hourNs: 0, encoded: [99] + bytes.dropFirst()) }
    }
}
