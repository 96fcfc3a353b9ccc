// The path judge on hand-built rounds (Judge/PathRounds.swift, PathWhere.swift),
// written as TestSupport's pathProbeRecords reads them: "++-|-" is a round of
// distance 4 in which hop 3 and the target went unanswered; rounds 30 s apart.
import Testing
import TestSupport
@testable import Store

private let ms: Nanoseconds = 1_000_000
private let s: Nanoseconds = 1_000_000_000
private let start: Nanoseconds = 1_795_640_400 * s
private let targetAddress = "203.0.113.50"

private func hopAddress(_ ttl: Int, second: Bool = false) -> String { pathHopAddress(ttl, second: second) }
private func records(_ rounds: [String]) -> [PathProbeRecord] { pathProbeRecords(rounds, from: start) }
private func repeated(_ round: String, _ count: Int) -> [String] { repeatedRounds(round, count) }

private func session(until end: Nanoseconds) -> SessionRecord {
    SessionRecord(id: 1, runID: 1, pid: 1, hostname: "test", version: "0", socketKind: "raw", intervalNs: s,
                  payloadBytes: 56, startedNs: start - s, heartbeatNs: end, stoppedNs: end)
}

private func judge(_ rounds: [String], sessionEnd: Nanoseconds = start + 100_000 * s) -> PathJudge {
    PathJudge(rounds: pathRounds(records(rounds), sessions: [session(until: sessionEnd)], timeoutNs: 2 * s))
}

/// The `where` of the whole set of rounds.
private func whereOf(_ rounds: [String]) -> PathWhere {
    judge(rounds).lossWhere(from: start, to: start + 100_000 * s)
}

@Suite struct PathHopFigureTests {
    /// trippy's forward loss: an unanswered probe is forward loss only when
    /// every later probe of its round went unanswered too.
    @Test func forwardLossIsLossThatContinuesToTheTarget() {
        let hops = judge(["++-|+", "+--|-", "---|-"]).hops
        #expect(hops.map(\.ttl) == [1, 2, 3, 4])
        #expect(hops.map(\.isTarget) == [false, false, false, true])
        #expect(hops.map(\.sent) == [3, 3, 3, 3])
        #expect(hops.map(\.answered) == [2, 1, 0, 1])
        #expect(hops.map(\.forwardLost) == [1, 2, 2, 2])
        // Hop 3 never answered: 100 % "loss", but only two of its three
        // probes were forward loss (in the first round the target answered).
        #expect(hops[2].lossPct == 100)
        #expect(isClose(hops[2].forwardLossPct, 200.0 / 3))
        #expect(hops[2].address == nil && hops[2].addresses.isEmpty && hops[2].rtt == nil)
        #expect(hops[3].address == targetAddress)
    }

    @Test func aHopThatNeverAnswersHasNoForwardLossWhileLaterHopsAnswer() {
        let hops = judge(repeated("+-+|+", 5)).hops
        #expect(hops[1].lossPct == 100 && hops[1].forwardLossPct == 0)
        #expect(hops.allSatisfy { $0.forwardLost == 0 })
    }

    @Test func rttFiguresComeFromTheOneRTTCode() throws {
        let hop = try #require(judge(repeated("++|+", 4)).hops.first)
        var values = Array(repeating: 1 * ms, count: 4)
        #expect(hop.rtt == exactRTTFigures(&values))
        #expect(hop.rtt?.p50 == Double(ms) && hop.rtt?.jitter == 0)
    }

    /// A route change: hop 2 answers from one router, then from another.
    @Test func aRouteChangeShowsAsTheHopsAddressList() {
        let hops = judge(repeated("++|+", 3) + repeated("+b|+", 5)).hops
        #expect(hops[1].addresses == [hopAddress(2), hopAddress(2, second: true)])
        #expect(hops[1].address == hopAddress(2, second: true))
        #expect(hops[0].addresses == [hopAddress(1)])
        // On a tie the address that answered last wins.
        #expect(judge(["++|+", "+b|+"]).hops[1].address == hopAddress(2, second: true))
    }

    @Test func aReplyAfterTheTimeoutIsNoAnswer() {
        var late = records(["++|+"])
        late[1].receivedNs = late[1].sentNs + 3 * s
        let hops = PathJudge(rounds: pathRounds(late, sessions: [session(until: start + 100 * s)], timeoutNs: 2 * s)).hops
        #expect(hops.map(\.answered) == [1, 0, 1])
    }

    /// A round whose recorder stopped before its timeout ran out says
    /// nothing: never loss.
    @Test func aRoundTheRecorderDidNotSeeToItsEndIsLeftOut() {
        let j = judge(["++|+", "++|-"], sessionEnd: start + 31 * s)
        #expect(j.rounds.count == 1)
        #expect(j.hops.map(\.sent) == [1, 1, 1])
        #expect(j.lossWhere(from: start, to: start + 60 * s) == .unknown)
    }

    @Test func theTargetsTTLIsTheDistanceMostRoundsHad() {
        let hops = judge(repeated("++|+", 3) + repeated("+++|+", 2)).hops
        #expect(hops.map(\.ttl) == [1, 2, 3, 3])
        #expect(hops.last?.isTarget == true && hops.last?.sent == 5)
    }
}

@Suite struct PathWhereTests {
    @Test func gatewayWhenEveryHopAndTheTargetAreLost() {
        #expect(whereOf(repeated("+++|+", 5) + repeated("---|-", 4))
                == PathWhere(segment: .gateway, ttl: 1, address: hopAddress(1)))
    }

    @Test func pathWhereTheLossBeginsAndContinuesToTheTarget() {
        #expect(whereOf(repeated("++++|+", 5) + repeated("++--|-", 4))
                == PathWhere(segment: .path, ttl: 3, address: hopAddress(3)))
    }

    @Test func targetWhenEveryHopAnsweredButTheTargetDidNot() {
        #expect(whereOf(repeated("+++|+", 5) + repeated("+++|-", 2))
                == PathWhere(segment: .target, ttl: 4, address: targetAddress))
    }

    @Test func localWhenTheLostProbesWereNeverSent() {
        #expect(whereOf(repeated("+++|+", 5) + repeated("xxx|x", 3) + ["---|-"]) == PathWhere(segment: .local))
    }

    @Test func unknownWithoutRoundsOrWhenNoRoundSawTheLoss() {
        #expect(whereOf([]) == .unknown)
        #expect(whereOf(repeated("+++|+", 5)) == .unknown)
        // Rounds outside the period do not count.
        #expect(judge(repeated("---|-", 3)).lossWhere(from: start + 3600 * s, to: start + 7200 * s) == .unknown)
    }

    /// mtr's misreading: a router that rate-limits its answers shows "loss"
    /// while it forwards everything; the target's own loss is the target's.
    @Test func aRateLimitedHopIsNotBlamed() {
        let rounds = repeated("+-+|+", 6) + repeated("+++|+", 3) + repeated("+-+|-", 4) + repeated("+++|-", 2)
        #expect(whereOf(rounds) == PathWhere(segment: .target, ttl: 4, address: targetAddress))
        #expect(judge(rounds).hops[1].forwardLost == 0)
    }

    /// Hop 3 rate-limits (answers one round in three) right in front of hop
    /// 4, where forwarding loss really begins: in most lost rounds hop 3 and
    /// everything after it went unanswered, but hop 3 answered as often then
    /// as in good rounds, so the loss begins at hop 4.
    @Test func aRateLimitedHopRightInFrontOfTheRealLossIsNotWhereItBegins() {
        let rounds = repeated("++-++|+", 6) + repeated("+++++|+", 3) + repeated("++---|-", 6) + repeated("+++--|-", 3)
        #expect(judge(rounds).rounds(from: start, to: start + 100_000 * s).filter { $0.lostFrom(3) }.count == 6)
        #expect(whereOf(rounds) == PathWhere(segment: .path, ttl: 4, address: hopAddress(4)))
    }

    /// A router that never answers, right in front of the loss: it is no
    /// evidence, and the loss begins at the first hop that used to answer.
    @Test func aHopThatNeverAnswersIsNotBlamed() {
        #expect(whereOf(repeated("+-++|+", 5) + repeated("+---|-", 5))
                == PathWhere(segment: .path, ttl: 3, address: hopAddress(3)))
        // Further ahead of the loss it changes nothing either.
        #expect(whereOf(repeated("+-++|+", 5) + repeated("+-+-|-", 5))
                == PathWhere(segment: .path, ttl: 4, address: hopAddress(4)))
    }

    /// The second-to-last hop answers one round in four, and the target
    /// rate-limits its echo replies: in three of the four rounds that lost
    /// the target, hop 4 was unanswered too, which reads as forward loss from
    /// hop 4. It answered as often then as in good rounds: the far end.
    @Test func lossAtTheSecondToLastHopOnlyWhileTheTargetRateLimitsIsTheTarget() {
        let rounds = repeated("++++|+", 2) + repeated("+++-|+", 6) + repeated("+++-|-", 3) + ["++++|-"]
        #expect(whereOf(rounds) == PathWhere(segment: .target, ttl: 5, address: targetAddress))
    }

    /// A window that is one outage has no round that reached the target, so
    /// no baseline: the first hop from which everything was lost is named,
    /// without an address when it never answered.
    @Test func withoutAnyGoodRoundTheFirstHopFromWhichAllIsLostIsNamed() {
        #expect(whereOf(repeated("+---|-", 4)) == PathWhere(segment: .path, ttl: 2, address: nil))
    }

    /// "Most rounds": loss from hop 3 in only half the lost rounds is not
    /// enough to name hop 3.
    @Test func halfOfTheLostRoundsIsNotMost() {
        #expect(whereOf(repeated("++++|+", 4) + repeated("++--|-", 2) + repeated("++++|-", 2)).segment == .target)
    }

    /// Each period is judged on its own rounds; the baseline is the window's.
    @Test func eachPeriodIsJudgedOnItsOwnRounds() {
        let j = judge(repeated("+++|+", 4) + repeated("---|-", 2) + repeated("+++|+", 4) + repeated("+++|-", 2))
        #expect(j.lossWhere(from: start + 120 * s, to: start + 180 * s).segment == .gateway)
        #expect(j.lossWhere(from: start + 300 * s, to: start + 360 * s).segment == .target)
        #expect(j.rounds(from: start + 120 * s, to: start + 180 * s).count == 2)
    }
}

private func isClose(_ a: Double?, _ b: Double) -> Bool { a.map { abs($0 - b) < 1e-9 } ?? false }
