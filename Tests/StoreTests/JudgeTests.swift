// The Judge on hand-built probes: each test is a short list of cases and
// what they must give, so it reads like the rule it pins (Judge/*.swift).
import Testing
@testable import Store

private let ms: Nanoseconds = 1_000_000
private let s: Nanoseconds = 1_000_000_000

@Suite struct VerdictTests {
    /// One probe sent at 0 with a 2 s timeout: what answered it, where its
    /// session's data ends (nil: no session), and its verdict.
    struct Case: CustomStringConvertible {
        var name: String
        var row: Nanoseconds? = nil
        var replyRows: [Nanoseconds] = []
        var sendError: Int32? = nil
        var icmp = false
        var sessionEnd: Nanoseconds? = 10 * s
        var verdict: Verdict
        var duplicates = 0
        var failure: FailureKind? = nil
        var description: String { name }
    }

    static let icmpKind = FailureKind.icmp(family: 4, type: 3, code: 1)
    static let cases: [Case] = [
        Case(name: "reply in the row", row: 20 * ms, verdict: .received),
        Case(name: "reply only in a reply row", replyRows: [20 * ms], verdict: .received),
        Case(name: "the smallest rtt is the first reply", row: 3 * s, replyRows: [30 * ms, 25 * ms],
             verdict: .received, duplicates: 2),
        Case(name: "a reply exactly at the timeout is in time", row: 2 * s, verdict: .received),
        Case(name: "a reply 1 ns after the timeout is late", row: 2 * s + 1, verdict: .late),
        Case(name: "late with a duplicate", replyRows: [3 * s, 4 * s], verdict: .late, duplicates: 1),
        Case(name: "a reply in time wins over an ICMP error", row: 20 * ms, icmp: true, verdict: .received, failure: icmpKind),
        Case(name: "a late reply keeps its ICMP error", row: 3 * s, icmp: true, verdict: .late, failure: icmpKind),
        Case(name: "send error", sendError: 101, verdict: .lost, failure: .send(101)),
        Case(name: "a send error wins over an ICMP error", sendError: -1, icmp: true, verdict: .lost, failure: .send(-1)),
        Case(name: "ICMP error", icmp: true, verdict: .lost, failure: icmpKind),
        Case(name: "an ICMP error is lost even after the recorder stopped", icmp: true, sessionEnd: 1 * s,
             verdict: .lost, failure: icmpKind),
        Case(name: "silence while the recorder ran", verdict: .lost),
        Case(name: "silence until exactly the timeout's end", sessionEnd: 2 * s, verdict: .lost),
        Case(name: "the recorder stopped before the timeout ran out", sessionEnd: 2 * s - 1, verdict: .unknown),
        Case(name: "no session", sessionEnd: nil, verdict: .unknown),
        Case(name: "a send error without a session is still lost", sendError: 101, sessionEnd: nil,
             verdict: .lost, failure: .send(101)),
    ]

    @Test(arguments: cases)
    func verdict(_ c: Case) {
        let probe = ProbeRecord(sentNs: 0, targetID: 1, rttNs: c.row, sendError: c.sendError)
        var rows: ReplyRows?
        for rtt in c.replyRows {
            if rows == nil { rows = ReplyRows(rtt) } else { rows!.add(rtt) }
        }
        let error = c.icmp ? ICMPErrorRecord(sentNs: 0, targetID: 1, rttNs: ms, family: 4, type: 3, code: 1, source: "x") : nil
        let answers = ProbeAnswers(probe, replyRows: rows, icmpError: error)
        #expect(answers.verdict(sentNs: 0, sessionEndNs: c.sessionEnd, timeoutNs: 2 * s) == c.verdict)
        #expect(answers.duplicates == c.duplicates)
        #expect(answers.failure == c.failure)
        #expect(c.verdict.isLost == (c.verdict == .lost || c.verdict == .late))
    }

    @Test func theFirstICMPErrorIsTheEarliestAndTheFirstMetOnATie() {
        func error(_ rtt: Nanoseconds, _ code: UInt8) -> ICMPErrorRecord {
            ICMPErrorRecord(sentNs: 0, targetID: 1, rttNs: rtt, family: 4, type: 3, code: code, source: "x")
        }
        #expect(error(1, 0).answersBefore(error(2, 1)))
        #expect(!error(2, 0).answersBefore(error(1, 1)))
        #expect(!error(1, 0).answersBefore(error(1, 1)))
    }

    @Test func dumpsFirstReplyIsTheSmallestOfRowAndReplyRows() {
        func split(_ row: Nanoseconds?, _ rows: [Nanoseconds]) -> [Nanoseconds?] {
            let (first, others) = splitFirstReply(rowNs: row, replyRows: rows)
            return [first] + others.map { $0 }
        }
        #expect(split(nil, []) == [nil])
        #expect(split(5, []) == [5])
        #expect(split(5, [7, 6]) == [5, 7, 6])
        #expect(split(5, [5]) == [5, 5])  // a tie keeps the row's
        let moved = splitFirstReply(rowNs: 5, replyRows: [7, 3, 4])
        #expect(moved.first == 3 && moved.others.sorted() == [4, 5, 7])
        let none = splitFirstReply(rowNs: nil, replyRows: [9, 8])
        #expect(none.first == 8 && none.others == [9])
    }
}

@Suite struct SessionTests {
    func session(_ id: Int64, _ start: Nanoseconds, _ end: Nanoseconds, interval: Nanoseconds = s) -> SessionRecord {
        SessionRecord(id: id, runID: UInt64(id), pid: 1, hostname: "h", version: "t", socketKind: "raw",
                      intervalNs: interval, payloadBytes: 56, startedNs: start, heartbeatNs: end, stoppedNs: end)
    }

    @Test func theSessionOfAProbe() {
        // 1 runs [0, 100 s); 2 [50, 60 s) overlaps it; 3 [200, 300 s) after a pause.
        var cursor = SessionCursor([session(1, 0, 100 * s), session(2, 50 * s, 60 * s), session(3, 200 * s, 300 * s)])
        let cases: [(Nanoseconds, Int)] = [
            (-1, -1),        // before any session
            (10 * s, 0),
            (55 * s, 1),     // the latest started
            (70 * s, 0),     // 2 ended: the earlier one still running
            (150 * s, 1),    // none running: the latest started (its end makes the verdict)
            (250 * s, 2),
            (55 * s, 1),     // out of order: still right
        ]
        for (sent, expected) in cases { #expect(cursor.session(at: sent) == expected, "probe at \(sent)") }
        #expect(cursor.endNs(-1) == nil && cursor.endNs(2) == 300 * s)
        #expect(cursor.intervalNs(-1) == 0 && cursor.intervalNs(0) == s)
    }

    @Test func theSessionsOfATarget() {
        let sessions = [session(2, 50 * s, 60 * s), session(1, 0, 100 * s), session(3, 200 * s, 300 * s)]
        let rows = [SessionTargetRecord(sessionID: 2, targetID: 7, offsetNs: 0),
                    SessionTargetRecord(sessionID: 1, targetID: 7, offsetNs: 0),
                    SessionTargetRecord(sessionID: 3, targetID: 8, offsetNs: 0)]
        #expect(sessionsJudging(7, sessions: sessions, sessionTargets: rows).map(\.id) == [1, 2])
        #expect(sessionsProbing(7, sessions: sessions, sessionTargets: rows).map(\.id) == [2, 1])
        // No session_target rows for the target (hand-made data): judged with
        // every session, covered by none.
        #expect(sessionsJudging(9, sessions: sessions, sessionTargets: rows).map(\.id) == [1, 2, 3])
        #expect(sessionsProbing(9, sessions: sessions, sessionTargets: rows).isEmpty)
    }

    @Test func coverageIsTheSessionsMinusTheirGaps() {
        let covered = coveredIntervals(
            [session(1, 0, 100 * s), session(2, 50 * s, 150 * s)],
            gaps: [GapRecord(sessionID: 1, startNs: 10 * s, endNs: 20 * s, reason: .stalled),
                   GapRecord(sessionID: 2, startNs: 140 * s, endNs: 500 * s, reason: .dropped)])
        #expect(covered.map { [$0.0, $0.1] } == [[0, 10 * s], [20 * s, 140 * s]])
        #expect(coverage(covered, 0, 200 * s) == 130.0 / 200)
        #expect(coverage(covered, 10 * s, 20 * s) == 0)
        #expect(coverage(covered, 140 * s, 300 * s) == 0)
        #expect(coverage(covered, 5 * s, 25 * s) == 0.5)
    }
}

@Suite struct OutageRuleTests {
    /// (send time in s, session, lost) with 1 s intervals.
    func runs(_ probes: [(Double, Int64, Bool)]) -> [LostRun] {
        var builder = LostRunBuilder()
        var runs: [LostRun] = []
        for (t, session, lost) in probes {
            if let run = builder.add(sentNs: Nanoseconds(t * 1e9), session: session, intervalNs: s, lost: lost) { runs.append(run) }
        }
        if let open = builder.openRun { runs.append(open) }
        return runs
    }

    @Test func consecutiveMeansSameSessionAndLessThanOneAndAHalfIntervals() {
        #expect(isConsecutive(0, session: 1, s, session: 1, intervalNs: s))
        #expect(isConsecutive(0, session: 1, 3 * s / 2 - 1, session: 1, intervalNs: s))
        #expect(!isConsecutive(0, session: 1, 3 * s / 2, session: 1, intervalNs: s))
        #expect(!isConsecutive(0, session: 1, s, session: 2, intervalNs: s))
        #expect(!isConsecutive(0, session: -1, s, session: -1, intervalNs: s))
    }

    @Test func aRunEndsAtTheNextProbeOrOneIntervalAfterItsLast() {
        #expect(runs([(0, 1, false), (1, 1, true), (2, 1, true), (3, 1, false)])
                == [LostRun(startNs: s, lastNs: 2 * s, count: 2, endNs: 3 * s)])
        // A gap (no probe for 1.5 intervals) splits the run; each piece ends
        // one interval after its last probe.
        #expect(runs([(0, 1, true), (1, 1, true), (2.5, 1, true), (3.5, 1, false)])
                == [LostRun(startNs: 0, lastNs: s, count: 2, endNs: 2 * s),
                    LostRun(startNs: 5 * s / 2, lastNs: 5 * s / 2, count: 1, endNs: 7 * s / 2)])
        // A restart (another session) splits it too.
        #expect(runs([(0, 1, true), (1, 2, true), (2, 2, false)])
                == [LostRun(startNs: 0, lastNs: 0, count: 1, endNs: s),
                    LostRun(startNs: s, lastNs: s, count: 1, endNs: 2 * s)])
        // A run that reaches the last probe is left open.
        #expect(runs([(0, 1, false), (1, 1, true), (2, 1, true)]) == [LostRun(startNs: s, lastNs: 2 * s, count: 2, endNs: nil)])
        #expect(runs([(0, -1, true), (1, -1, true)]).map(\.count) == [1, 1])
    }

    @Test func stitchedStretchesGiveTheRunsOfTheWhole() {
        // 30 probes of two sessions; every split into stretches stitches back
        // to the runs of the whole.
        let sessions = [1, 2].map { id in
            SessionRecord(id: id, runID: 1, pid: 1, hostname: "h", version: "t", socketKind: "raw", intervalNs: s,
                          payloadBytes: 56, startedNs: 0, heartbeatNs: 100 * s, stoppedNs: nil)
        }
        let lost: Set<Int> = [0, 1, 4, 5, 6, 9, 12, 13, 14, 15, 20, 21, 29]
        let probes: [(Nanoseconds, Int64, Bool)] = (0..<30).map { i in
            (Nanoseconds(i) * s + (i >= 13 ? s / 2 : 0), i < 20 ? 1 : 2, lost.contains(i))
        }
        func stretch(_ part: ArraySlice<(Nanoseconds, Int64, Bool)>) -> RunStretch {
            var builder = LostRunBuilder()
            var runs: [LostRun] = []
            for (t, session, isLost) in part {
                if let run = builder.add(sentNs: t, session: session, intervalNs: s, lost: isLost) { runs.append(run) }
            }
            if let open = builder.openRun { runs.append(open) }
            return RunStretch(firstNs: part.first!.0, firstSession: part.first!.1, lastNs: part.last!.0,
                              lastSession: part.last!.1, runs: runs)
        }
        let whole = stitchLostRuns([stretch(probes[...])], sessions: sessions)
        #expect(whole.map(\.count) == [2, 3, 1, 1, 3, 2, 1])
        #expect(whole.allSatisfy { $0.endNs != nil })
        for cuts in [[1], [5, 6], [2, 13, 14], [20], [21, 29], Array(1..<30)] {
            let bounds = [0] + cuts + [30]
            let parts = zip(bounds, bounds.dropFirst()).map { stretch(probes[$0..<$1]) }
            #expect(stitchLostRuns(parts, sessions: sessions) == whole, "cut at \(cuts)")
        }
    }
}

@Suite struct RTTFigureTests {
    @Test func nearestRank() {
        // 1-based rank ceil(p/100 * n), as a 0-based index.
        let cases: [(Int, Int, Int)] = [(50, 1, 0), (99, 1, 0), (50, 10, 4), (90, 10, 8), (99, 10, 9),
                                        (50, 11, 5), (99, 100, 98), (99, 101, 99), (90, 3, 2), (50, 2, 0)]
        for (p, n, index) in cases { #expect(nearestRankIndex(p, count: n) == index, "p\(p) of \(n)") }
        var values: [Nanoseconds] = [5, 1, 4, 2, 3, 10, 6, 9, 7, 8]
        #expect(selectRanks(&values, [4, 8, 9]) == [5, 9, 10])
    }

    @Test func lossPercentIsOverJudgedProbes() {
        #expect(lossPercent(lost: 1, sent: 5, unknown: 1) == 25)
        #expect(lossPercent(lost: 0, sent: 2, unknown: 2) == nil)
        #expect(lossPercent(lost: 0, sent: 0, unknown: 0) == nil)
    }

    @Test func chanMergeEqualsOnePassWelford() {
        var state: UInt64 = 42
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        let values = (0..<5000).map { _ in Nanoseconds(1_000_000 + next() % 80_000_000) }
        var once = RTTAccumulator()
        for v in values { once.add(v) }
        var exact = values
        let figures = exactRTTFigures(&exact)!
        #expect(abs(once.mean - figures.avg) <= 1e-9 * figures.avg)
        #expect(abs((once.m2 / Double(once.count)).squareRoot() - figures.stddev) <= 1e-9 * figures.stddev)
        for pieces in [1, 2, 7, 100, 5000] {
            var merged = RTTAccumulator()
            let size = (values.count + pieces - 1) / pieces
            for start in stride(from: 0, to: values.count, by: size) {
                var piece = RTTAccumulator()
                for v in values[start..<min(values.count, start + size)] { piece.add(v) }
                merged.append(piece)
            }
            merged.append(RTTAccumulator())  // an empty period changes nothing
            #expect([merged.min, merged.max, merged.sum, merged.first, merged.last, merged.jitterSum]
                    == [once.min, once.max, once.sum, once.first, once.last, once.jitterSum], "\(pieces) pieces")
            #expect(merged.count == once.count)
            #expect(abs(merged.mean - once.mean) <= 1e-12 * once.mean, "\(pieces) pieces")
            #expect(abs(merged.m2 - once.m2) <= 1e-9 * once.m2, "\(pieces) pieces")
        }
        #expect(once.jitterSum == zip(values, values.dropFirst()).reduce(0) { $0 + abs($1.1 - $1.0) })
        #expect(Double(once.jitterSum) / Double(once.count - 1) == figures.jitter)
    }

    @Test func histogramPercentilesAreWithinTheirBucket() {
        var histogram = RTTHistogram()
        let values: [Nanoseconds] = (1...1000).map { Nanoseconds($0) * 37_000 + 1_000_000 }
        for v in values { histogram.add(v) }
        for p in reportedPercentiles {
            let exact = Double(values[nearestRankIndex(p, count: values.count)])
            let approximate = histogram.percentile(p, count: values.count, min: values.first!, max: values.last!)
            #expect(abs(approximate - exact) <= 0.0075 * exact, "p\(p)")
        }
        // Kept inside [min, max] even when the bucket's middle is not.
        var one = RTTHistogram()
        one.add(20_000_000)
        #expect(one.percentile(50, count: 1, min: 20_000_000, max: 20_000_000) == 20_000_000)
    }
}
