// Path summaries (schema 9): one target-hour's rounds as the judge tallies
// them, encoded losslessly, with the guards that say when a report may use
// them; written with the hour summaries, for older hours by the idle
// re-summarize step, and kept by prune.
import Testing
import TestSupport
@testable import Store

@Suite struct PathSummaryTests {
    let folder = TemporaryFolder()
    static let hourNs: Int64 = 3_600_000_000_000
    static let start: Int64 = 1_764_000_000 * 1_000_000_000 / hourNs * hourNs
    static let second: Int64 = 1_000_000_000

    static func session(until end: Int64) -> SessionRecord {
        SessionRecord(id: 1, runID: 1, pid: 1, hostname: "h", version: "t", socketKind: "raw", intervalNs: second,
                      payloadBytes: 56, startedNs: start, heartbeatNs: end, stoppedNs: end)
    }

    /// A history's hour: rounds every 30 s, lost from hop 3 in a few of them.
    static func hourOfRounds(target: Int64 = 1, at hour: Int64 = start) -> [PathProbeRecord] {
        let rounds = (0..<120).map { i in i % 40 == 7 ? "++--|-" : i % 3 == 0 ? "+-++|+" : "+b++|+" }
        var records = pathProbeRecords(rounds, target: target, from: hour + 5 * second)
        for i in records.indices where records[i].receivedNs != nil { records[i].receivedNs! += Int64(i % 7) * 311_000 }
        return records
    }

    @Test func aSummaryTalliesItsHourAsTheJudgeDoesAndDecodesToItself() throws {
        let probes = Self.hourOfRounds()
        let sessions = [Self.session(until: Self.start + 2 * Self.hourNs)]
        let s = summarizePathHour(targetID: 1, hourNs: Self.start, probes: probes, sessions: sessions)
        let rounds = pathRounds(probes, sessions: sessions, timeoutNs: summaryTimeoutNs)
        #expect(s.tally.rounds == 120 && !s.rawOnly)
        #expect(s.tally.counts() == pathHopCounts(rounds), "the judge's own counts")
        #expect(s.lostRounds.count == 3 && s.lostRounds.allSatisfy { $0.target?.answered == false })
        #expect(s.tally.figures().map(\.addresses) == pathHopFigures(rounds).map(\.addresses))
        let decoded = try PathSummary(targetID: 1, hourNs: Self.start, encoded: s.encoded())
        #expect(decoded == s)
        #expect(s.encoded().count < 600, "\(s.encoded().count) bytes for an hour of a 5-hop path")
        var damaged = s.encoded()
        damaged.removeLast()
        #expect(throws: StoreError.self) { try PathSummary(targetID: 1, hourNs: Self.start, encoded: damaged) }
    }

    @Test func theGuardsSayWhichTimeoutsJudgeAsTheSummaryDid() throws {
        var probes = Self.hourOfRounds()
        // One answer at 800 ms, one at 2.5 s (late at the summary's 2 s).
        probes[1].receivedNs = probes[1].sentNs + 800_000_000
        probes[6].receivedNs = probes[6].sentNs + 2_500_000_000
        let s = summarizePathHour(targetID: 1, hourNs: Self.start, probes: probes,
                                  sessions: [Self.session(until: Self.start + 2 * Self.hourNs)])
        #expect(s.maxTimelyRTT == 800_000_000 && s.minSlowRTT == 2_500_000_000)
        #expect(s.judgesAlike(timeoutNs: 2 * Self.second))
        #expect(s.judgesAlike(timeoutNs: Self.second))
        #expect(!s.judgesAlike(timeoutNs: 500_000_000), "the 800 ms answer turns late")
        #expect(!s.judgesAlike(timeoutNs: 3 * Self.second), "the 2.5 s answer turns timely")
        // A session that ends 1.5 s after the hour's last unanswered probe:
        // that probe is unknown at 2 s, which makes the hour raw only.
        let last = probes.filter { $0.receivedNs == nil }.map(\.sentNs).max()!
        let short = summarizePathHour(targetID: 1, hourNs: Self.start, probes: probes,
                                      sessions: [Self.session(until: last + 1_500_000_000)])
        #expect(short.rawOnly && !short.judgesAlike(timeoutNs: 2 * Self.second))
    }

    @Test func summarizingAnHourWritesItsPathSummariesAndPruneKeepsThem() throws {
        let db = try Database(path: folder.file("p.db"), mode: .readWrite)
        let a = try db.target(name: "a", host: "a").id, b = try db.target(name: "b", host: "b").id
        let session = try db.beginSession(sampleSession, targets: [])
        var batch = WriteBatch()
        for hour in 0..<3 {
            let h = Self.start + Int64(hour) * Self.hourNs
            for minute in 0..<60 {
                for target in [a, b] {
                    batch.probes.append(ProbeRecord(sentNs: h + Int64(minute) * 60 * Self.second + target, targetID: target, rttNs: 1_000_000))
                }
            }
            batch.pathProbes += Self.hourOfRounds(target: a, at: h)
        }
        batch.heartbeatNs = Self.start + 3 * Self.hourNs
        try db.write(batch, session: session)
        try db.endSession(session, stoppedNs: Self.start + 3 * Self.hourNs)
        #expect(try db.summarizeHours(endingBy: Self.start + 2 * Self.hourNs, maxHours: 10) == 2)
        let written = try db.pathSummaries(from: .min, to: .max, targets: nil)
        #expect(written.map(\.targetID) == [a, a, b, b], "b has no rounds: an empty summary says its hour was summarized")
        #expect(written.filter { $0.targetID == a }.map(\.tally.rounds) == [120, 120])
        #expect(written.filter { $0.targetID == b }.allSatisfy { $0.tally.rounds == 0 })
        #expect(try db.outdatedSummaryHours().isEmpty)

        while try !db.pruneStep(sentBefore: Self.start + 2 * Self.hourNs).done {}
        #expect(try db.pathProbes(targets: nil, from: .min, to: Self.start + 2 * Self.hourNs).isEmpty)
        #expect(try db.pathSummaries(from: .min, to: .max, targets: nil) == written, "prune keeps them, as it keeps summaries")
    }

    @Test func hoursSummarizedBeforePathSummariesGetThemWhenIdle() throws {
        let db = try Database(path: folder.file("p.db"), mode: .readWrite)
        let a = try db.target(name: "a", host: "a").id
        let session = try db.beginSession(sampleSession, targets: [])
        var batch = WriteBatch()
        for minute in 0..<120 {
            batch.probes.append(ProbeRecord(sentNs: Self.start + Int64(minute) * 60 * Self.second, targetID: a, rttNs: 1_000_000))
        }
        batch.pathProbes = Self.hourOfRounds(target: a) + Self.hourOfRounds(target: a, at: Self.start + Self.hourNs)
        batch.heartbeatNs = Self.start + 2 * Self.hourNs
        try db.write(batch, session: session)
        try db.endSession(session, stoppedNs: Self.start + 2 * Self.hourNs)
        try db.summarizeHours(endingBy: Self.start + 2 * Self.hourNs, maxHours: 10)
        let expected = try db.pathSummaries(from: .min, to: .max, targets: nil)
        // What an older build left: hour summaries, no path summaries.
        try db.execute("DELETE FROM path_summary")
        #expect(try db.outdatedSummaryHours() == [Self.start, Self.start + Self.hourNs])
        for hour in try db.outdatedSummaryHours() { try db.resummarize(hour: hour) }
        #expect(try db.pathSummaries(from: .min, to: .max, targets: nil) == expected)
        #expect(try db.outdatedSummaryHours().isEmpty)
    }
}
