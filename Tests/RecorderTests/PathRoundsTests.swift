// Path rounds against the fake kernel (EngineTests' FakeTransport and
// ManualClock): what a round sends, how its answers are matched, what it
// stores, and that the target's own probes never notice.
import Testing
@testable import Recorder
import Store

struct PathHarness {
    let clock = ManualClock()
    let transport: FakeTransport
    let engine: ProbeEngine
    let start: Int64
    let target = IPAddress(parsing: "198.18.0.50")!
    let routers = [IPAddress(parsing: "198.18.0.101")!, IPAddress(parsing: "198.18.0.102")!]

    init(pathInterval: Int64 = 30 * second, interval: Int64 = second) {
        transport = FakeTransport(clock: clock)
        start = clock.monotonicNs()
        engine = ProbeEngine(config: EngineConfig(runID: 42, intervalNs: interval, payloadSize: 56, pathIntervalNs: pathInterval),
                             sessionID: 7, targets: [RecorderTarget(id: 1, name: "t", host: "t")],
                             transport: transport, clock: clock, startMono: start)
        engine.setAddress(target, forTarget: 0)
    }

    /// The sender by hand; the target answers each of its own probes at
    /// once unless `losing` (then none).
    func run(until: Int64, losing: Bool = false) {
        while true {
            let d = engine.nextDeadline()
            if d > until { clock.sleep(untilMonotonicNs: until); return }
            clock.sleep(untilMonotonicNs: d)
            let before = transport.sent.withLock { $0.count }
            engine.sendDue()
            guard !losing else { continue }
            let id = transport.identifier(for: .v4)
            engine.handle(transport.sent.withLock { Array($0[before...]) }.filter { $0.hopLimit == nil }.map {
                .echoReply(from: target, identifier: id, sequence: $0.sequence, payload: $0.payload, kernelReceivedNs: nil)
            })
        }
    }

    var pathSends: [FakeTransport.Sent] { transport.sent.withLock { $0.filter { $0.hopLimit != nil } } }
    var probeSends: [FakeTransport.Sent] { transport.sent.withLock { $0.filter { $0.hopLimit == nil } } }

    /// Plays a path of two routers in front of the target: time exceeded
    /// for TTL 1 and 2 (quoting the echo header alone, RFC 792), the
    /// target's echo reply for every TTL from 3.
    func answer(_ sends: [FakeTransport.Sent], skipping: Set<Int> = []) {
        let id = transport.identifier(for: .v4)
        engine.handle(sends.filter { !skipping.contains($0.hopLimit!) }.map { s in
            let ttl = s.hopLimit!
            if ttl <= routers.count {
                return .icmpError(family: .v4, type: 11, code: 0, reporter: routers[ttl - 1], destination: target,
                                  identifier: id, sequence: s.sequence, quotedPayload: [], kernelReceivedNs: nil)
            }
            return .echoReply(from: target, identifier: id, sequence: s.sequence, payload: s.payload, kernelReceivedNs: nil)
        })
    }
}

/// The ICMP checksum the echo request carries on the wire.
func wireChecksum(_ s: FakeTransport.Sent, identifier: UInt16) -> UInt16 {
    internetChecksum(ICMPEcho.request(family: .v4, identifier: identifier, sequence: s.sequence, payload: s.payload, computeChecksum: false))
}

@Suite struct PathRoundsTests {
    @Test func discoveryFindsTheDistanceAndStoresOneProbePerHop() {
        let h = PathHarness()
        h.run(until: h.start)
        let discovery = h.pathSends
        #expect(discovery.map(\.hopLimit) == (1...30).map { $0 })
        h.clock.advance(5 * ms)
        h.answer(discovery)
        let batch = h.engine.cutBatch()
        #expect(batch.pathProbes.map(\.ttl) == [1, 2, 3])
        #expect(batch.pathProbes.map(\.toTarget) == [false, false, true])
        #expect(batch.pathProbes.map(\.answer) == [.timeExceeded, .timeExceeded, .echoReply])
        #expect(batch.pathProbes.map(\.from) == ["198.18.0.101", "198.18.0.102", "198.18.0.50"])
        #expect(batch.pathProbes.allSatisfy { $0.rttNs == 5 * ms && $0.roundNs == batch.pathProbes[0].sentNs })
        #expect(batch.pathHops.map(\.address) == ["198.18.0.101", "198.18.0.102"])
        // The target's own probe is untouched: its reply, no error, nothing foreign.
        #expect(batch.probes.count == 1 && batch.probes[0].rttNs == 0)
        #expect(batch.replies.isEmpty && batch.icmpErrors.isEmpty && batch.foreignPackets == 0)
    }

    @Test func roundsProbeEachHopAndTheTargetEveryPathIntervalWithOneChecksum() {
        let h = PathHarness()
        h.run(until: h.start)
        h.answer(h.pathSends)
        for n in 1...3 {
            let before = h.pathSends.count
            h.run(until: h.start + Int64(n) * 30 * second - 1)
            #expect(h.pathSends.count == before, "no round before its time")
            h.run(until: h.start + Int64(n) * 30 * second)
            let round = Array(h.pathSends[before...])
            #expect(round.map(\.hopLimit) == [1, 2, 3])
            h.answer(round)
        }
        let batch = h.engine.cutBatch()
        #expect(batch.pathProbes.count == 3 + 3 * 3)
        #expect(batch.pathProbes.allSatisfy { $0.receivedNs != nil })
        #expect(batch.pathHops.count == 2, "a hop's address is recorded once while it stays")
        // Paris traceroute: one identifier (the transport's) and one checksum for every probe of the target.
        let id = h.transport.identifier(for: .v4)
        #expect(Set(h.pathSends.map { wireChecksum($0, identifier: id) }).count == 1)
        // Their sequences lie far from the target's own (0, 1, 2, ... here).
        #expect(h.pathSends.allSatisfy { $0.sequence > 30_000 })
        #expect(h.probeSends.count == 91)
        #expect(batch.probes.count == 91 && batch.probes.allSatisfy { $0.rttNs == 0 })
        #expect(batch.replies.isEmpty && batch.icmpErrors.isEmpty && batch.foreignPackets == 0)
    }

    @Test func aLosingTargetGetsARoundEveryIntervalUntilAMinuteAfterItsLastLoss() {
        let h = PathHarness()
        h.run(until: h.start)
        h.answer(h.pathSends)
        // The target's probes are never answered: from the third one found
        // lost (probe 2, found at 5 s: 2 s and two probes later), a round every second.
        h.run(until: h.start + 10 * second, losing: true)
        let rounds = Set(h.pathSends.filter { $0.hopLimit == 1 }.map(\.mono)).sorted()
        #expect(rounds.first == h.start)
        #expect(rounds.dropFirst().first == h.start + 5 * second)
        #expect(rounds.count >= 6 && rounds.count <= 8)
        for (a, b) in zip(rounds.dropFirst(), rounds.dropFirst(2)) { #expect(b - a == second) }
        // Answered again from 11 s on: the last probe found lost is probe 10,
        // at 12 s; rounds stay at every second until 72 s, then every 30 s.
        h.run(until: h.start + 130 * second)
        let later = Set(h.pathSends.filter { $0.hopLimit == 1 }.map { ($0.mono - h.start) / second }).sorted()
        #expect(later.filter { (11...72).contains($0) } == Array(11...72))
        #expect(later.filter { $0 > 72 } == [102])
    }

    @Test func burstsOfOneOrTwoLostProbesKeepTheRoundsEveryPathInterval() {
        let h = PathHarness()
        h.run(until: h.start)
        h.answer(h.pathSends)
        h.run(until: h.start + 20 * second)
        // Probes 21 and 22 unanswered, then 33: never three within 10 s, so
        // random loss costs no extra rounds.
        h.run(until: h.start + 22 * second, losing: true)
        h.run(until: h.start + 32 * second)
        h.run(until: h.start + 33 * second, losing: true)
        h.run(until: h.start + 130 * second)
        let rounds = Set(h.pathSends.filter { $0.hopLimit == 1 }.map { ($0.mono - h.start) / second }).sorted()
        #expect(rounds == [0, 30, 60, 90, 120])
        // Three within 10 s (131-133) make it losing: a round as the third is found lost.
        h.run(until: h.start + 140 * second, losing: true)
        let later = Set(h.pathSends.filter { $0.hopLimit == 1 }.map { ($0.mono - h.start) / second }).filter { $0 > 130 }
        #expect(later.min() == 135 && later.count >= 4)
    }

    @Test func aHopThatAnswersFromANewAddressForThreeRoundsIsRecordedAndThePathRediscovered() {
        let h = PathHarness()
        h.run(until: h.start)
        h.answer(h.pathSends)
        let moved = IPAddress(parsing: "198.18.0.111")!
        let id = h.transport.identifier(for: .v4)
        for n in 1...3 {
            let before = h.pathSends.count
            h.run(until: h.start + Int64(n) * 30 * second)
            let round = Array(h.pathSends[before...])
            #expect(round.count == 3)
            h.engine.handle([.icmpError(family: .v4, type: 11, code: 0, reporter: moved, destination: h.target,
                                        identifier: id, sequence: round[0].sequence, quotedPayload: round[0].payload,
                                        kernelReceivedNs: nil)])
            h.answer(Array(round.dropFirst()))
        }
        let batch = h.engine.cutBatch()
        #expect(batch.pathHops.map(\.address) == ["198.18.0.101", "198.18.0.102", "198.18.0.111"])
        #expect(batch.pathHops.last?.sinceNs == batch.pathProbes[3].roundNs, "since the first round it answered from there")
        let before = h.pathSends.count
        h.run(until: h.start + 120 * second)
        #expect(h.pathSends[before...].filter { $0.hopLimit == 30 }.count == 1, "the next round is a discovery")
    }

    @Test func pathIntervalZeroSendsNoTTLLimitedProbe() {
        let h = PathHarness(pathInterval: 0)
        h.run(until: h.start + 100 * second)
        #expect(h.pathSends.isEmpty)
        #expect(h.probeSends.count == 101)
    }
}

@Suite struct PathBatchTests {
    func round(at ns: Int64) -> [PathProbeRecord] {
        (1...3).map { PathProbeRecord(targetID: 1, roundNs: ns, ttl: $0, toTarget: $0 == 3, sentNs: ns + Int64($0)) }
    }

    @Test func heldBatchesKeepTheirRoundsAndDropThoseOfTheDroppedStretch() {
        var held = WriteBatch()
        held.probes = [100, 200].map { ProbeRecord(sentNs: $0, targetID: 1) }
        held.pathProbes = round(at: 150)
        var later = WriteBatch()
        later.probes = [300, 400].map { ProbeRecord(sentNs: $0, targetID: 1) }
        later.pathProbes = round(at: 350)
        later.pathHops = [PathHopRecord(targetID: 1, ttl: 1, sinceNs: 350, address: "198.18.0.101")]
        held.append(later)
        #expect(held.pathProbes == round(at: 150) + round(at: 350))
        #expect(held.pathHops.count == 1 && !held.isEmpty)
        _ = held.dropOldestProbes(keeping: 2, session: 7, growing: nil)
        #expect(held.probes.map(\.sentNs) == [300, 400])
        #expect(held.pathProbes == round(at: 350), "the round inside the dropped stretch goes with it")
    }
}
