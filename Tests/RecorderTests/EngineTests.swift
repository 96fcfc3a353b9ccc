// The probe engine against a fake kernel and a manual clock: the tests play
// the kernel and assert exactly what was sent, matched and batched.
import Synchronization
import Testing
@testable import Recorder
import Store

final class ManualClock: RecorderClock {
    // Monotonic and wall readings move together unless a test steps the wall clock.
    let now = Mutex<(mono: Int64, wall: Int64)>((mono: 1_000_000_000_000, wall: 1_764_000_000_000_000_000))
    func monotonicNs() -> Int64 { now.withLock { $0.mono } }
    func wallNs() -> Int64 { now.withLock { $0.wall } }
    func sleep(untilMonotonicNs deadline: Int64) {
        now.withLock { if deadline > $0.mono { $0.wall += deadline - $0.mono; $0.mono = deadline } }
    }
    func advance(_ ns: Int64) { now.withLock { $0.mono += ns; $0.wall += ns } }
    func stepWall(_ ns: Int64) { now.withLock { $0.wall += ns } }
}

final class FakeTransport: ICMPTransport {
    struct Sent: Equatable { var destination: IPAddress; var sequence: UInt16; var payload: [UInt8]; var mono: Int64; var hopLimit: Int? = nil }
    let kind = SocketKind.raw
    let families: Set<IPFamily> = [.v4, .v6]
    let clock: ManualClock
    let sent = Mutex<[Sent]>([])
    /// errno to return for sends to these destinations.
    let failing = Mutex<[IPAddress: Int32]>([:])
    init(clock: ManualClock) { self.clock = clock }
    func identifier(for family: IPFamily, path: Int) -> UInt16 { family == .v4 ? 0x1234 : 0x5678 }
    func sendEcho(to destination: IPAddress, path: Int, sequence: UInt16, payload: [UInt8], hopLimit: Int?) -> Int32? {
        sent.withLock { $0.append(Sent(destination: destination, sequence: sequence, payload: payload, mono: clock.monotonicNs(), hopLimit: hopLimit)) }
        return failing.withLock { $0[destination] }
    }
    func receive(timeoutMilliseconds: Int32) -> [Incoming] { [] }
    func close() {}
}

let second: Int64 = 1_000_000_000
let ms: Int64 = 1_000_000
let addrA = IPAddress(parsing: "198.18.0.2")!
let addrB = IPAddress(parsing: "fd00:18::2")!

struct Harness {
    let clock = ManualClock()
    let transport: FakeTransport
    let engine: ProbeEngine
    let start: Int64
    static let runID: UInt64 = 0xDEAD_BEEF_0123_4567

    init(targets: Int = 2, interval: Int64 = second, size: Int = 56, resolve: Bool = true, verbose: Bool = false) {
        transport = FakeTransport(clock: clock)
        start = clock.monotonicNs()
        let ts = (0..<targets).map { RecorderTarget(id: Int64($0 + 1), name: "t\($0)", host: "h\($0)") }
        engine = ProbeEngine(config: EngineConfig(runID: Self.runID, intervalNs: interval, payloadSize: size),
                             sessionID: 7, targets: ts, transport: transport, clock: clock, startMono: start,
                             verbose: verbose)
        if resolve {
            engine.setAddress(addrA, forTarget: 0)
            if targets > 1 { engine.setAddress(addrB, forTarget: 1) }
        }
    }

    /// Runs the sender loop by hand until the monotonic clock reaches `until`.
    func run(until: Int64) {
        while true {
            let d = engine.nextDeadline()
            if d > until { clock.sleep(untilMonotonicNs: until); return }
            clock.sleep(untilMonotonicNs: d)
            engine.sendDue()
        }
    }

    func reply(to s: FakeTransport.Sent, payload: [UInt8]? = nil, from: IPAddress? = nil,
               identifier: UInt16? = nil, kernelNs: Int64? = nil) -> Incoming {
        .echoReply(from: from ?? s.destination,
                   identifier: identifier ?? transport.identifier(for: s.destination.family),
                   sequence: s.sequence, payload: payload ?? s.payload, kernelReceivedNs: kernelNs)
    }
}

@Suite struct ScheduleTests {
    @Test func slotsAreStartPlusKTimesIntervalPlusOffset() {
        let h = Harness(targets: 2, interval: second)
        h.run(until: h.start + 3 * second)
        let sent = h.transport.sent.withLock { $0 }
        // Target 0 at offset 0, target 1 at half the interval; 4 and 3 slots.
        let expected: [(IPAddress, Int64)] = [
            (addrA, 0), (addrB, 500 * ms), (addrA, second), (addrB, 1500 * ms),
            (addrA, 2 * second), (addrB, 2500 * ms), (addrA, 3 * second),
        ]
        #expect(sent.map(\.destination) == expected.map(\.0))
        #expect(sent.map { $0.mono - h.start } == expected.map(\.1))
        #expect(sent.map(\.sequence) == [0, 0, 1, 1, 2, 2, 3])
        let batch = h.engine.cutBatch()
        #expect(batch.probes.count == 7)
        #expect(batch.probes.allSatisfy { $0.sendError == nil && $0.rttNs == nil })
        #expect(batch.gaps.isEmpty)
    }

    @Test func aStallSkipsMissedSlotsAndRecordsAGap() {
        let h = Harness(targets: 1, interval: second)
        h.run(until: h.start + 2 * second)              // slots 0, 1, 2
        let wallBefore = h.clock.wallNs()
        h.clock.advance(10 * second + 300 * ms)         // SIGSTOP for 10.3 s
        h.engine.sendDue()
        let sent = h.transport.sent.withLock { $0 }
        // Exactly one probe after the stall: slot 12, sent 0.3 s late, no burst.
        #expect(sent.count == 4)
        #expect(sent.last!.sequence == 12)
        let batch = h.engine.cutBatch()
        #expect(batch.gaps.count == 1)
        #expect(batch.gaps[0].startNs == wallBefore + second)  // slot 3 was the first missed
        #expect(batch.gaps[0].endNs == h.clock.wallNs())
        #expect(batch.gaps[0].reason == .stalled)
        // Back on the grid: the next probe is slot 13 at start + 13 s.
        #expect(h.engine.nextDeadline() == h.start + 13 * second)
    }

    @Test func aShortHiccupCatchesUpButALongerStallSkips() {
        let h = Harness(targets: 1, interval: 10 * ms)
        h.run(until: h.start)                           // slot 0
        h.clock.advance(50 * ms)                        // 50 ms late: below the 100 ms floor
        h.run(until: h.clock.monotonicNs())             // the sender loop, without moving the clock
        #expect(h.transport.sent.withLock { $0.map(\.sequence) } == [0, 1, 2, 3, 4, 5])
        #expect(h.engine.cutBatch().gaps.isEmpty)
        h.clock.advance(150 * ms)                       // slot 6 is now 140 ms late
        h.run(until: h.clock.monotonicNs())
        #expect(h.transport.sent.withLock { $0.map(\.sequence) }.suffix(1) == [20])
        #expect(h.engine.cutBatch().gaps.count == 1)
    }

    @Test func aWallClockStepForwardMovesNeitherScheduleNorRTT() {
        let h = Harness(targets: 1, interval: second)
        h.run(until: h.start)
        let first = h.transport.sent.withLock { $0[0] }
        h.clock.advance(20 * ms)
        h.clock.stepWall(3600 * second)                 // NTP steps the wall clock forward an hour
        h.engine.handle([h.reply(to: first, kernelNs: h.clock.wallNs())])
        h.run(until: h.start + 2 * second)
        let sent = h.transport.sent.withLock { $0 }
        // No burst of "missed" slots, no stall, no gap: the schedule is monotonic.
        #expect(sent.map { $0.mono - h.start } == [0, second, 2 * second])
        let batch = h.engine.cutBatch()
        #expect(batch.probes[0].rttNs == 20 * ms)
        #expect(batch.probes[1].sentNs == batch.probes[0].sentNs + second + 3600 * second)
        #expect(batch.gaps.isEmpty)
    }

    @Test func aWallClockStepMovesNeitherScheduleNorRTT() {
        let h = Harness(targets: 1, interval: second)
        h.run(until: h.start)
        let first = h.transport.sent.withLock { $0[0] }
        h.clock.advance(20 * ms)
        h.clock.stepWall(-3600 * second)                // NTP steps the wall clock back an hour
        h.engine.handle([h.reply(to: first)])
        h.run(until: h.start + 2 * second)
        let sent = h.transport.sent.withLock { $0 }
        #expect(sent.map { $0.mono - h.start } == [0, second, 2 * second])
        let batch = h.engine.cutBatch()
        #expect(batch.probes[0].rttNs == 20 * ms)
        #expect(batch.probes[1].sentNs == batch.probes[0].sentNs + second - 3600 * second)
        #expect(batch.gaps.isEmpty)
    }
}

@Suite struct MatchingTests {
    @Test func firstReplyFoldsIntoTheProbeDuplicatesAndLateOnesBecomeReplyRows() {
        let h = Harness(targets: 1)
        h.run(until: h.start + second)                 // probes 0 and 1
        let sent = h.transport.sent.withLock { $0 }
        h.clock.advance(15 * ms)
        h.engine.handle([h.reply(to: sent[1])])
        h.clock.advance(5 * ms)
        h.engine.handle([h.reply(to: sent[1])])        // duplicate, 20 ms
        let batch = h.engine.cutBatch()
        #expect(batch.probes.map(\.rttNs) == [nil, 15 * ms])
        #expect(batch.replies == [ReplyRecord(sentNs: batch.probes[1].sentNs, targetID: 1, rttNs: 20 * ms)])
        // Probe 0 answered after its row was cut: a reply row, 1.02 s.
        h.engine.handle([h.reply(to: sent[0])])
        let later = h.engine.cutBatch()
        #expect(later.probes.isEmpty)
        #expect(later.replies == [ReplyRecord(sentNs: batch.probes[0].sentNs, targetID: 1, rttNs: second + 20 * ms)])
        #expect(later.foreignPackets == 0)
    }

    @Test func repliesMinutesLateMatchFromTheirPayloadUntilTheWindowEnds() {
        // Probes are remembered in full for 30 s only (30 slots at 1 s); a
        // later reply brings its send times in its tagged payload.
        let h = Harness(targets: 1, interval: second, verbose: true)
        #expect(h.engine.recentSlots == 30)
        h.run(until: h.start)
        let sent0 = h.transport.sent.withLock { $0[0] }
        let probe0 = h.engine.cutBatch().probes[0]
        h.run(until: h.start + 300 * second)           // probes 1 ... 300
        h.clock.advance(250 * ms)
        h.engine.handle([h.reply(to: sent0), h.reply(to: sent0)])
        let late = h.engine.cutBatch()
        #expect(late.replies == [
            ReplyRecord(sentNs: probe0.sentNs, targetID: 1, rttNs: 300 * second + 250 * ms),
            ReplyRecord(sentNs: probe0.sentNs, targetID: 1, rttNs: 300 * second + 250 * ms),
        ])
        #expect(late.foreignPackets == 0)
        let replies = h.engine.takeEvents().compactMap { e -> Bool? in
            if case let .reply(_, sequence, _, duplicate) = e, sequence == 0 { duplicate } else { nil }
        }
        #expect(replies == [false, true])
        // The window is the 600 newest probes: once probe 601 is sent, probe
        // 1 is out of it and probe 2 is its oldest.
        let (sent1, sent2) = h.transport.sent.withLock { ($0[1], $0[2]) }
        h.run(until: h.start + 601 * second)
        h.engine.handle([h.reply(to: sent1), h.reply(to: sent2)])
        let after = h.engine.cutBatch()
        #expect(after.replies.map(\.rttNs) == [599 * second])
        #expect(after.foreignPackets == 1)
    }

    @Test func aPayloadWithTheRightLayoutButNoValidTagNeverMatches() {
        // Someone who saw our probes knows the layout and the run id; without
        // the run's key, moving the times or the sequence breaks the tag.
        let h = Harness(targets: 1, interval: second)
        h.run(until: h.start + 60 * second)
        let sent = h.transport.sent.withLock { $0 }
        _ = h.engine.cutBatch()
        let genuine = ProbePayload.decode(sent[10].payload, expectedSize: 56)!
        var earlier = genuine; earlier.sentMonoNs -= second   // a longer RTT
        var moved = genuine; moved.sequence = 11              // another probe
        var wall = genuine; wall.sentWallNs += 1
        h.clock.advance(ms)
        h.engine.handle([earlier, moved, wall].map { h.reply(to: sent[10], payload: $0.encode(size: 56)) }
                        + [h.reply(to: sent[10], from: addrB)])
        let batch = h.engine.cutBatch()
        #expect(batch.replies.isEmpty && batch.foreignPackets == 4)
    }

    @Test func errorsQuotingThePayloadMatchAllWindowLongOthersOnlyWhileRecent() {
        let h = Harness(targets: 1, interval: second)
        h.run(until: h.start + 100 * second)
        let sent = h.transport.sent.withLock { $0 }
        let probes = h.engine.cutBatch().probes
        let router = IPAddress(parsing: "198.18.0.254")!
        func error(_ s: FakeTransport.Sent, quoted: [UInt8]) -> Incoming {
            .icmpError(family: .v4, type: 11, code: 0, reporter: router, destination: addrA,
                       identifier: 0x1234, sequence: s.sequence, quotedPayload: quoted, kernelReceivedNs: nil)
        }
        h.engine.handle([
            error(sent[5], quoted: sent[5].payload),                  // 95 s old, quoted: matched
            error(sent[6], quoted: []),                               // 94 s old, header only: too old
            error(sent[90], quoted: []),                              // 10 s old, header only: matched
            error(sent[91], quoted: Array(sent[91].payload.prefix(47))),  // cut inside the tag: as header only
        ])
        let batch = h.engine.cutBatch()
        #expect(batch.icmpErrors.map(\.sentNs) == [probes[5].sentNs, probes[90].sentNs, probes[91].sentNs])
        #expect(batch.icmpErrors.map(\.rttNs) == [95 * second, 10 * second, 9 * second])
        #expect(batch.foreignPackets == 1)
    }

    @Test func aReplyReadSecondsAfterTheKernelStampedItKeepsItsTrueRTT() {
        // SIGSTOP between the reply's arrival and our read: the kernel's stamp
        // is 3 s old when we read it, and still the RTT is the kernel's.
        let h = Harness(targets: 1)
        h.run(until: h.start)
        let sent = h.transport.sent.withLock { $0[0] }
        let stamped = h.clock.wallNs() + 1 * ms
        h.clock.advance(3 * second)
        h.engine.handle([h.reply(to: sent, kernelNs: stamped)])
        #expect(h.engine.cutBatch().probes[0].rttNs == 1 * ms)
    }

    @Test func aStampFromBeforeTheSendOrAfterNowIsIgnored() {
        // A wall step between the kernel's stamp and our read: the delay is
        // outside [0, now - sent], so the RTT falls back to our own read.
        let h = Harness(targets: 1)
        h.run(until: h.start)
        let sent = h.transport.sent.withLock { $0 }
        h.clock.advance(30 * ms)
        h.engine.handle([h.reply(to: sent[0], kernelNs: h.clock.wallNs() - 3600 * second)])
        h.engine.handle([h.reply(to: sent[0], kernelNs: h.clock.wallNs() + 5 * ms)])
        let batch = h.engine.cutBatch()
        #expect(batch.probes[0].rttNs == 30 * ms)
        #expect(batch.replies.map(\.rttNs) == [30 * ms])
    }

    @Test func theKernelReceiveStampSetsTheRTT() {
        let h = Harness(targets: 1)
        h.run(until: h.start)
        let sent = h.transport.sent.withLock { $0[0] }
        h.clock.advance(30 * ms)
        // Received by the kernel 10 ms before we read it.
        h.engine.handle([h.reply(to: sent, kernelNs: h.clock.wallNs() - 10 * ms)])
        #expect(h.engine.cutBatch().probes[0].rttNs == 20 * ms)
    }

    @Test func nothingForgedTruncatedOrForeignEverMatches() {
        let h = Harness(targets: 2)
        h.run(until: h.start)
        let s = h.transport.sent.withLock { $0[0] }
        var otherRun = s.payload
        otherRun[4] ^= 0xFF                              // run id differs
        var zeroed = s.payload
        for i in zeroed.indices { zeroed[i] = 0 }
        var badPadding = s.payload
        badPadding[badPadding.count - 1] ^= 1
        var otherTarget = s.payload
        otherTarget[15] = 1                              // claims target 1 (sent to addrB)
        let unsent = ProbePayload(runID: Harness.runID, targetIndex: 0, sequence: 5).encode(size: 56)
        h.clock.advance(ms)
        h.engine.handle([
            h.reply(to: s, payload: otherRun),
            h.reply(to: s, payload: zeroed),
            h.reply(to: s, payload: Array(s.payload.prefix(20))),
            h.reply(to: s, payload: []),
            h.reply(to: s, payload: s.payload + [0]),
            h.reply(to: s, payload: badPadding),
            h.reply(to: s, payload: otherTarget),
            h.reply(to: s, payload: unsent),
            h.reply(to: s, from: IPAddress(parsing: "198.18.0.3")!),
            h.reply(to: s, identifier: 0x4321),
            .foreign,
        ])
        let batch = h.engine.cutBatch()
        #expect(batch.foreignPackets == 11)
        #expect(batch.probes.allSatisfy { $0.rttNs == nil })
        #expect(batch.replies.isEmpty)
        // ... and the true reply still matches afterwards.
        h.engine.handle([h.reply(to: s)])
        #expect(h.engine.cutBatch().replies.count == 1)
    }

    @Test func icmpErrorsMatchBySequenceOrByQuotedPayload() {
        let h = Harness(targets: 2)
        h.run(until: h.start + 3 * second)
        let sent = h.transport.sent.withLock { $0 }
        let router = IPAddress(parsing: "198.18.0.254")!
        let a2 = sent.filter { $0.destination == addrA }[2]
        let b1 = sent.filter { $0.destination == addrB }[1]
        h.clock.advance(ms)
        h.engine.handle([
            // IPv4 router quoting only the 8-byte echo header.
            .icmpError(family: .v4, type: 3, code: 1, reporter: router, destination: addrA,
                       identifier: 0x1234, sequence: a2.sequence, quotedPayload: [], kernelReceivedNs: nil),
            // ICMPv6 quoting the whole probe.
            .icmpError(family: .v6, type: 1, code: 3, reporter: addrB, destination: addrB,
                       identifier: 0x5678, sequence: b1.sequence, quotedPayload: b1.payload, kernelReceivedNs: nil),
            // A sequence never sent, another identifier, another destination: foreign.
            .icmpError(family: .v4, type: 3, code: 1, reporter: router, destination: addrA,
                       identifier: 0x1234, sequence: 999, quotedPayload: [], kernelReceivedNs: nil),
            .icmpError(family: .v4, type: 3, code: 1, reporter: router, destination: addrA,
                       identifier: 0x1111, sequence: a2.sequence, quotedPayload: [], kernelReceivedNs: nil),
            .icmpError(family: .v4, type: 3, code: 1, reporter: router, destination: router,
                       identifier: 0x1234, sequence: a2.sequence, quotedPayload: [], kernelReceivedNs: nil),
        ])
        let batch = h.engine.cutBatch()
        let probesA = batch.probes.filter { $0.targetID == 1 }
        let probesB = batch.probes.filter { $0.targetID == 2 }
        #expect(batch.icmpErrors == [
            ICMPErrorRecord(sentNs: probesA[2].sentNs, targetID: 1, rttNs: second + ms,  // sent at 2 s, error at 3.001 s
                            family: 4, type: 3, code: 1, source: "198.18.0.254"),
            ICMPErrorRecord(sentNs: probesB[1].sentNs, targetID: 2, rttNs: 1501 * ms,  // sent at 1.5 s
                            family: 6, type: 1, code: 3, source: "fd00:18::2"),
        ])
        #expect(batch.foreignPackets == 3)
        // One log line when errors begin, one when replies come back; none per error.
        let began = h.engine.takeEvents().filter { if case .addressChanged = $0 { false } else { true } }
        #expect(began == [
            .icmpErrorsBegan(target: "t0", family: .v4, type: 3, code: 1, reporter: router),
            .icmpErrorsBegan(target: "t1", family: .v6, type: 1, code: 3, reporter: addrB),
        ])
        h.engine.handle([h.reply(to: a2)])
        #expect(h.engine.takeEvents() == [.icmpErrorsEnded(target: "t0", errors: 1)])
    }

    @Test func failedSendsAndUnresolvedNamesAreStillProbes() {
        let h = Harness(targets: 2, resolve: false)
        h.engine.setAddress(addrA, forTarget: 0)
        h.transport.failing.withLock { $0[addrA] = 101 }   // ENETUNREACH
        h.run(until: h.start + second)
        h.transport.failing.withLock { $0 = [:] }
        h.run(until: h.start + 2 * second)
        let batch = h.engine.cutBatch()
        #expect(batch.probes.filter { $0.targetID == 1 }.map(\.sendError) == [101, 101, nil])
        #expect(batch.probes.filter { $0.targetID == 2 }.map(\.sendError) == [-1, -1])
        #expect(h.transport.sent.withLock { $0.count } == 3)   // nothing sent without an address
        let events = h.engine.takeEvents()
        #expect(events.contains(.sendErrorsBegan(target: "t0", errno: 101)))
        #expect(events.contains(.sendErrorsEnded(target: "t0", failedProbes: 2)))
    }

    @Test func anAddressChangeIsRecordedAndOldProbesStillMatch() {
        let h = Harness(targets: 1)
        h.run(until: h.start)
        let old = h.transport.sent.withLock { $0[0] }
        let newAddress = IPAddress(parsing: "198.18.0.9")!
        h.engine.setAddress(newAddress, forTarget: 0)
        h.run(until: h.start + second)
        h.clock.advance(ms)
        let new = h.transport.sent.withLock { $0[1] }
        #expect(new.destination == newAddress)
        h.engine.handle([h.reply(to: old), h.reply(to: new), h.reply(to: new, from: addrA)])
        let batch = h.engine.cutBatch()
        #expect(batch.addresses.map(\.address) == ["198.18.0.2", "198.18.0.9"])
        #expect(batch.probes.map(\.rttNs) == [second + ms, ms])
        #expect(batch.foreignPackets == 1)
    }
}
