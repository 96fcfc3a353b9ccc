// Targets that come and go within a session (a reloaded targets file): the
// batch's changes become session_target and session_target_span rows, read
// back with the session's targets, and the judge covers such a target only
// inside its spans.
import Foundation
import Testing
import TestSupport
import Store

@Suite struct TargetSpanTests {
    let folder = TemporaryFolder()
    let s: Nanoseconds = 1_000_000_000

    @Test func addedRemovedAndReAddedTargetsAreStoredAsSpans() throws {
        let database = try Database(path: folder.file("pingem.db"), mode: .readWrite)
        let kept = try database.target(name: "kept", host: "192.0.2.1").id
        let gone = try database.target(name: "gone", host: "192.0.2.2").id
        let new = try database.target(name: "new", host: "192.0.2.3").id
        let t0 = sampleSession.startedNs
        let session = try database.beginSession(sampleSession, targets: [
            SessionTargetRecord(sessionID: 0, targetID: kept, offsetNs: 0),
            SessionTargetRecord(sessionID: 0, targetID: gone, offsetNs: 500_000_000),
        ])
        var reload = WriteBatch()
        reload.targetChanges = [
            .removed(targetID: gone, endNs: t0 + 10 * s),
            .added(SessionTargetRecord(sessionID: session, targetID: new, offsetNs: 250_000_000), startNs: t0 + 11 * s + 250_000_000),
        ]
        reload.heartbeatNs = t0 + 10 * s
        try database.write(reload, session: session)
        var later = WriteBatch()
        later.targetChanges = [
            .removed(targetID: new, endNs: t0 + 20 * s),
            // Back at its own offset: the later offset is not stored.
            .added(SessionTargetRecord(sessionID: session, targetID: gone, offsetNs: 750_000_000), startNs: t0 + 30 * s + 500_000_000),
        ]
        later.heartbeatNs = t0 + 30 * s
        try database.write(later, session: session)

        #expect(try database.sessionTargets(sessions: [session]) == [
            SessionTargetRecord(sessionID: session, targetID: kept, offsetNs: 0),
            SessionTargetRecord(sessionID: session, targetID: new, offsetNs: 250_000_000,
                                spans: [TargetSpan(startNs: t0 + 11 * s + 250_000_000, endNs: t0 + 20 * s)]),
            SessionTargetRecord(sessionID: session, targetID: gone, offsetNs: 500_000_000,
                                spans: [TargetSpan(startNs: t0, endNs: t0 + 10 * s),
                                        TargetSpan(startNs: t0 + 30 * s + 500_000_000, endNs: nil)]),
        ])
    }

    func session(_ id: Int64, _ start: Nanoseconds, _ end: Nanoseconds) -> SessionRecord {
        SessionRecord(id: id, runID: UInt64(id), pid: 1, hostname: "h", version: "t", socketKind: "raw",
                      intervalNs: s, payloadBytes: 56, startedNs: start, heartbeatNs: end, stoppedNs: end)
    }

    @Test func aTargetIsCoveredOnlyInsideItsSpans() {
        let sessions = [session(1, 0, 100 * s), session(2, 200 * s, 300 * s)]
        let rows = [
            SessionTargetRecord(sessionID: 1, targetID: 7, offsetNs: 0,
                                spans: [TargetSpan(startNs: 0, endNs: 40 * s), TargetSpan(startNs: 60 * s, endNs: nil)]),
            SessionTargetRecord(sessionID: 1, targetID: 8, offsetNs: 0),
            // Spans reaching past their session are cut to it.
            SessionTargetRecord(sessionID: 2, targetID: 7, offsetNs: 0, spans: [TargetSpan(startNs: 250 * s, endNs: 400 * s)]),
        ]
        let gaps = [GapRecord(sessionID: 1, startNs: 30 * s, endNs: 70 * s, reason: .stalled)]
        let seven = coveredIntervals(of: 7, sessions: sessions, sessionTargets: rows, gaps: gaps)
        #expect(seven.map { [$0.0, $0.1] } == [[0, 30 * s], [70 * s, 100 * s], [250 * s, 300 * s]])
        // A target without spans is covered by its whole sessions, as before.
        let eight = coveredIntervals(of: 8, sessions: sessions, sessionTargets: rows, gaps: gaps)
        #expect(eight.map { [$0.0, $0.1] } == coveredIntervals([sessions[0]], gaps: gaps).map { [$0.0, $0.1] })
        // Probes are still judged with the whole sessions.
        #expect(sessionsJudging(7, sessions: sessions, sessionTargets: rows).map(\.id) == [1, 2])
    }
}
