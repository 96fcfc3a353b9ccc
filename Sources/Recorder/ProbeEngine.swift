// The probe engine: the schedule, the in-flight table that matches replies
// and ICMP errors to probes, and the batch of rows waiting to be committed.
//
// Invariants this file keeps:
// - Probe k of target i is due at start + k * interval + offset_i on the
//   monotonic clock (never "now + interval", so there is no drift). If the
//   process could not send for a whole interval (stopped, suspended), the
//   missed slots are skipped and one `gap` row says so: no burst, no loss.
// - A reply counts only if its ICMP identifier and payload (magic, run id,
//   target, 64-bit sequence, padding, length) match a probe of this run, the
//   payload's tag checks out under the run's key for the reply's source
//   address (ProbePayload), and the probe is inside the match window (10
//   minutes: the `window` newest probes of its target). Everything else is
//   counted as foreign.
// - Memory does not grow with the match window: a reply brings its probe's
//   send times back in the tagged payload, so only the last 30 seconds of
//   probes are remembered in full (to fold a first reply into its unwritten
//   row, and to match ICMP errors that quote no payload), plus one bit per
//   probe of the window that says whether a reply came (duplicates).
// - Every probe becomes exactly one row, whether its send worked or not.
//   The first reply is folded into the probe's row while that row is still
//   in the unwritten batch; later and duplicate replies become `reply` rows.
//
// It does no I/O of its own except through the injected transport and clock,
// so tests drive it by hand (`sendDue`, `handle`, `cutBatch`).

import Glibc
import Store
import Synchronization

public struct RecorderTarget: Sendable, Hashable {
    /// Database id of the target.
    public var id: Int64
    /// Label if given, else the host as given.
    public var name: String
    public var host: String
    /// The transport path (source, interface, TOS) its probes go by; its
    /// replies and errors count only when they carry that path's identifier.
    public var path: Int
    public init(id: Int64, name: String, host: String, path: Int = 0) {
        self.id = id; self.name = name; self.host = host; self.path = path
    }
}

public struct EngineConfig: Sendable {
    public var runID: UInt64
    public var intervalNs: Int64
    public var payloadSize: Int
    /// How late a reply may come and still be matched: replies are matched
    /// to the probes of this last stretch of the schedule. It must end well
    /// before the recorder compacts an hour (30 minutes after it ended).
    public var matchWindowNs: Int64
    /// How long a probe is remembered in full (its slot): ICMP errors that
    /// quote no payload are matched only this long after the probe.
    public var recentWindowNs: Int64
    /// The key of the payload tags; secret, and new every run.
    public var key: SipHashKey
    /// --path-interval: how often each target's path is probed in a round
    /// (PathRounds.swift); 0, the engine's default, sends none.
    public var pathIntervalNs: Int64
    public init(runID: UInt64, intervalNs: Int64, payloadSize: Int, matchWindowNs: Int64 = 600_000_000_000,
                recentWindowNs: Int64 = 30_000_000_000, key: SipHashKey = .random(), pathIntervalNs: Int64 = 0) {
        self.pathIntervalNs = pathIntervalNs
        self.runID = runID; self.intervalNs = intervalNs; self.payloadSize = payloadSize
        self.matchWindowNs = matchWindowNs; self.recentWindowNs = recentWindowNs; self.key = key
    }
}

/// Something worth one line on stderr.
public enum EngineEvent: Sendable, Equatable {
    case sendErrorsBegan(target: String, errno: Int32)
    case sendErrorsEnded(target: String, failedProbes: Int)
    case addressChanged(target: String, from: IPAddress?, to: IPAddress)
    case stalled(skippedSlots: Int64, seconds: Double)
    case probe(target: String, sequence: UInt64, sendError: Int32?)
    case reply(target: String, sequence: UInt64, rttNs: Int64, duplicate: Bool)
    case icmpError(target: String, sequence: UInt64, family: IPFamily, type: UInt8, code: UInt8, reporter: IPAddress)
    /// The first ICMP error after replies (or at start): one line, not one per probe.
    case icmpErrorsBegan(target: String, family: IPFamily, type: UInt8, code: UInt8, reporter: IPAddress)
    case icmpErrorsEnded(target: String, errors: Int)
}

public final class ProbeEngine: Sendable {
    /// One recent probe, 32 bytes; all zero bytes is an empty slot, so a
    /// ring fresh from calloc is empty without being written (see SlotRing).
    /// Probe k of a target lives at index k % capacity, and the slot says
    /// which lap of the ring it came from.
    struct Slot {
        var sentMono: Int64 = 0
        var sentWall: Int64 = 0
        /// k / capacity + 1 (0: empty). 32 bits last 2^32 laps of at least
        /// one slot a probe: 136 years at 1 s, 1.4 years at 10 ms, and a
        /// wrapped lap still needs the right 16-bit sequence to mislead.
        var lap: UInt32 = 0
        /// Index into the target's address history + 1; 0: no address (unresolved).
        var addressPlusOne: Int32 = 0
        /// The batch generation the probe's row belongs to, and its index
        /// there: while `generation` is current, the row is still unwritten.
        /// 32 bits wrap after 2^32 batches, long after the slot was reused.
        var generation: UInt32 = 0
        var rowIndex: Int32 = 0

        init(sequence k: UInt64, capacity: Int, address: Int32, generation: UInt32, rowIndex: Int32) {
            lap = Self.lap(k, capacity: capacity)
            addressPlusOne = address + 1
            self.generation = generation
            self.rowIndex = rowIndex
        }

        /// True when this slot holds probe k (its index being k % capacity).
        func holds(_ k: UInt64, capacity: Int) -> Bool {
            lap != 0 && lap == Self.lap(k, capacity: capacity)
        }

        static func lap(_ k: UInt64, capacity: Int) -> UInt32 {
            let lap = UInt32(truncatingIfNeeded: k / UInt64(capacity) + 1)
            return lap == 0 ? 1 : lap
        }

        /// Index into the target's address history; -1: no address.
        var address: Int32 { addressPlusOne - 1 }
    }

    /// A target's remembered probes in zeroed memory from calloc: the
    /// kernel maps its pages only when a slot is first written, so memory
    /// grows with the match window as it fills, and a ring of 60,000 slots
    /// (10 minutes at 10 ms) costs no time at start. (An Array had to write
    /// every empty slot first: 288 MB for 100 targets at 10 ms, which made
    /// the first slots late enough to be skipped as a stall.) Freed by the
    /// engine's deinit; used only under the engine's lock.
    struct SlotRing {
        let base: UnsafeMutablePointer<Slot>
        let capacity: Int

        init(capacity: Int) {
            self.capacity = capacity
            guard let memory = calloc(capacity, MemoryLayout<Slot>.stride) else {
                fatalError("cannot allocate \(capacity) probe slots")
            }
            base = memory.bindMemory(to: Slot.self, capacity: capacity)
        }

        subscript(index: Int) -> Slot {
            get { base[index] }
            nonmutating set { base[index] = newValue }
        }

        func free() { Glibc.free(base) }
    }

    /// One bit per probe of the match window: set when a reply came, so a
    /// second reply is known as a duplicate however late it comes. Probe k
    /// owns bit k % count, cleared when k is sent. Zeroed memory from calloc,
    /// freed by the engine's deinit; used only under the engine's lock.
    struct ReplyBits {
        let words: UnsafeMutablePointer<UInt64>
        let count: Int

        init(count: Int) {
            self.count = count
            guard let memory = calloc((count + 63) / 64, MemoryLayout<UInt64>.stride) else {
                fatalError("cannot allocate \(count) reply bits")
            }
            words = memory.bindMemory(to: UInt64.self, capacity: (count + 63) / 64)
        }

        func clear(_ k: UInt64) {
            let i = Int(k % UInt64(count))
            words[i / 64] &= ~(1 << UInt64(i % 64))
        }

        func isSet(_ k: UInt64) -> Bool {
            let i = Int(k % UInt64(count))
            return words[i / 64] & (1 << UInt64(i % 64)) != 0
        }

        /// Sets probe k's bit; returns whether it was set already.
        func testAndSet(_ k: UInt64) -> Bool {
            let i = Int(k % UInt64(count))
            let mask: UInt64 = 1 << UInt64(i % 64)
            defer { words[i / 64] |= mask }
            return words[i / 64] & mask != 0
        }

        func free() { Glibc.free(words) }
    }

    struct TargetState {
        var target: RecorderTarget
        var offsetNs: Int64
        var addresses: [IPAddress] = []
        var current: Int32 = -1
        var nextSequence: UInt64 = 0
        var ring: SlotRing
        var replied: ReplyBits
        var failingSince: Int = 0  // consecutive failed sends, for begin/end events
        var icmpErrorStreak: Int = 0  // ICMP errors since the last reply, for begin/end events
        /// False once a reload removed the target: no more slots, but its
        /// late replies and errors are still matched (the payload's target
        /// index stays its own for the whole session).
        var active = true
        /// Its path rounds (PathRounds.swift).
        var route = TargetRoute()
    }

    struct State {
        var targets: [TargetState]
        var startMono: Int64
        var generation: UInt32 = 1
        var batch = WriteBatch()
        var events: [EngineEvent] = []
        var probesSent: Int64 = 0
        var repliesMatched: Int64 = 0
    }

    public let config: EngineConfig
    /// How late a slot may be before the schedule skips instead of catching
    /// up: one interval, but at least 100 ms, so a short scheduling hiccup at
    /// a 10 ms interval sends a few probes late (their send times are exact
    /// anyway) rather than cutting a gap into the history.
    var stallThresholdNs: Int64 { max(config.intervalNs, 100_000_000) }
    public let sessionID: Int64
    public let verbose: Bool
    private let transport: any ICMPTransport
    private let clock: any RecorderClock
    private let state: Mutex<State>
    private let ringCapacity: Int
    /// Probes per target in the match window.
    private let window: UInt64
    let rounds: PathRounds
    /// Probes after which an unanswered one counts as lost for the path
    /// rounds' cadence (PathRounds.lossLagNs).
    private let lossLag: UInt64

    /// - Parameters:
    ///   - startMono: the schedule's origin on the monotonic clock.
    public init(config: EngineConfig, sessionID: Int64, targets: [RecorderTarget],
                transport: any ICMPTransport, clock: any RecorderClock,
                startMono: Int64, verbose: Bool = false) {
        self.config = config
        self.sessionID = sessionID
        self.verbose = verbose
        self.transport = transport
        self.clock = clock
        let window = max(1, (config.matchWindowNs + config.intervalNs - 1) / config.intervalNs)
        let recent = max(1, (min(config.recentWindowNs, config.matchWindowNs) + config.intervalNs - 1) / config.intervalNs)
        self.window = UInt64(window)
        self.rounds = PathRounds(intervalNs: config.pathIntervalNs, probeIntervalNs: config.intervalNs, runID: config.runID,
                                 key: config.key, payloadSize: config.payloadSize)
        self.lossLag = UInt64(max(1, (PathRounds.lossLagNs + config.intervalNs - 1) / config.intervalNs))
        // ICMP errors may quote only the 16-bit sequence (RFC 792 needs just
        // 8 bytes of the original), so the ring never holds two probes with
        // the same low 16 bits: at most 65536 slots per target.
        let capacity = Int(min(recent, 65_536))
        self.ringCapacity = capacity
        let n = Int64(max(targets.count, 1))
        let states = targets.enumerated().map { i, t in
            let offset = config.intervalNs * Int64(i) / n
            // The first round goes with the target's first probe.
            return TargetState(target: t, offsetNs: offset, ring: SlotRing(capacity: capacity),
                               replied: ReplyBits(count: Int(window)), route: TargetRoute(nextRoundMono: startMono + offset))
        }
        self.state = Mutex(State(targets: states, startMono: startMono))
    }

    deinit {
        state.withLock { s in
            for target in s.targets { target.ring.free(); target.replied.free() }
        }
    }

    /// Probes per target remembered in full (the recent window).
    var recentSlots: Int { ringCapacity }

    /// Offsets that spread the targets evenly over one interval.
    public var offsets: [Int64] { state.withLock { $0.targets.map(\.offsetNs) } }

    public var counts: (probes: Int64, replies: Int64) {
        state.withLock { ($0.probesSent, $0.repliesMatched) }
    }

    // MARK: Addresses

    /// Sets the address a target's next probes go to. A change is logged and
    /// stored, so reports can say which address answered when.
    public func setAddress(_ address: IPAddress, forTarget index: Int) {
        let wall = clock.wallNs()
        state.withLock { s in
            let old = s.targets[index].current >= 0 ? s.targets[index].addresses[Int(s.targets[index].current)] : nil
            if old == address { return }
            // Mutate in place: a copy of TargetState would copy its address list.
            if let known = s.targets[index].addresses.firstIndex(of: address) {
                s.targets[index].current = Int32(known)
            } else {
                s.targets[index].addresses.append(address)
                s.targets[index].current = Int32(s.targets[index].addresses.count - 1)
            }
            rounds.addressChanged(&s.targets[index].route)
            let target = s.targets[index].target
            s.batch.addresses.append(AddressRecord(targetID: target.id, sinceNs: wall, address: address.text))
            s.events.append(.addressChanged(target: target.name, from: old, to: address))
        }
    }

    /// The target's name no longer resolves: its next probes are stored
    /// unsent with `sendErrorUnresolved` (lost, kind "unresolved") rather
    /// than sent to an address the name no longer has. Returns false when it
    /// had no address already.
    @discardableResult
    public func clearAddress(forTarget index: Int) -> Bool {
        state.withLock { s in
            guard s.targets[index].current >= 0 else { return false }
            s.targets[index].current = -1
            return true
        }
    }

    /// True while a target's sends fail (or its name does not resolve).
    public func isFailing(target index: Int) -> Bool {
        state.withLock { $0.targets[index].failingSince > 0 }
    }

    public func currentAddress(ofTarget index: Int) -> IPAddress? {
        state.withLock { s in
            let t = s.targets[index]
            return t.current >= 0 ? t.addresses[Int(t.current)] : nil
        }
    }

    // MARK: Schedule

    /// When the earliest next probe is due, on the monotonic clock.
    public func nextDeadline() -> Int64 {
        state.withLock { earliestDue($0) }
    }

    /// A loop, not `map(...).min()`: the sender asks after every send, and
    /// an array per call was a malloc and free per probe.
    private func earliestDue(_ s: State) -> Int64 {
        var earliest = Int64.max
        for i in s.targets.indices where s.targets[i].active {
            earliest = min(earliest, s.startMono + s.targets[i].offsetNs + Int64(s.targets[i].nextSequence) * config.intervalNs,
                           rounds.deadline(s.targets[i].route))
        }
        return earliest
    }

    private func slotTime(_ s: State, _ t: TargetState, _ k: UInt64) -> Int64 {
        s.startMono + t.offsetNs + Int64(k) * config.intervalNs
    }

    /// Sends every probe that is due at `now` (monotonic). A target more than
    /// one interval behind skips to its latest due slot: the stall becomes a
    /// gap (no data), never a burst of catch-up probes. Returns the next
    /// deadline (as `nextDeadline()`), found under the same lock.
    @discardableResult
    public func sendDue() -> Int64 {
        let nowMono = clock.monotonicNs()
        return state.withLock { s in
            var earliestMissed: Int64? = nil
            var skipped: Int64 = 0
            for i in s.targets.indices where s.targets[i].active {
                // In place, never `var t = s.targets[i]`: writes must reach the state.
                let due = slotTime(s, s.targets[i], s.targets[i].nextSequence)
                guard due <= nowMono else { continue }
                if nowMono - due >= stallThresholdNs {
                    let latest = UInt64((nowMono - s.startMono - s.targets[i].offsetNs) / config.intervalNs)
                    earliestMissed = min(earliestMissed ?? due, due)
                    skipped += Int64(latest - s.targets[i].nextSequence)
                    s.targets[i].nextSequence = latest
                }
                send(target: i, &s)
                s.targets[i].nextSequence += 1
            }
            if rounds.isOn { advanceRoutes(&s) }
            if let missed = earliestMissed {
                let wallNow = clock.wallNs()
                let monoNow = clock.monotonicNs()
                let start = wallNow - (monoNow - missed)
                s.batch.gaps.append(GapRecord(sessionID: sessionID, startNs: start, endNs: wallNow, reason: .stalled))
                s.events.append(.stalled(skippedSlots: skipped, seconds: Double(nowMono - missed) / 1e9))
            }
            return earliestDue(s)
        }
    }

    private func send(target i: Int, _ s: inout State) {
        let k = s.targets[i].nextSequence
        let current = s.targets[i].current
        var slot = Slot(sequence: k, capacity: ringCapacity, address: current, generation: s.generation,
                        rowIndex: Int32(s.batch.probes.count))
        let error: Int32?
        slot.sentMono = clock.monotonicNs()
        slot.sentWall = clock.wallNs()
        if current >= 0 {
            let destination = s.targets[i].addresses[Int(current)]
            let payload = ProbePayload.sealed(
                runID: config.runID, targetIndex: UInt32(i), sequence: k, sentMonoNs: slot.sentMono,
                sentWallNs: slot.sentWall, key: config.key, destination: destination
            ).encode(size: config.payloadSize)
            error = transport.sendEcho(to: destination, path: s.targets[i].target.path,
                                       sequence: UInt16(truncatingIfNeeded: k), payload: payload)
        } else {
            error = sendErrorUnresolved
        }
        s.targets[i].ring[Int(k % UInt64(ringCapacity))] = slot
        s.targets[i].replied.clear(k)
        let target = s.targets[i].target
        s.batch.probes.append(ProbeRecord(sentNs: slot.sentWall, targetID: target.id, rttNs: nil, sendError: error))
        s.probesSent += 1
        if let error {
            if s.targets[i].failingSince == 0 { s.events.append(.sendErrorsBegan(target: target.name, errno: error)) }
            s.targets[i].failingSince += 1
        } else if s.targets[i].failingSince > 0 {
            s.events.append(.sendErrorsEnded(target: target.name, failedProbes: s.targets[i].failingSince))
            s.targets[i].failingSince = 0
        }
        if verbose { s.events.append(.probe(target: target.name, sequence: k, sendError: error)) }
        if rounds.isOn && k >= lossLag {
            let j = k - lossLag
            if s.targets[i].ring[Int(j % UInt64(ringCapacity))].holds(j, capacity: ringCapacity) && !s.targets[i].replied.isSet(j) {
                rounds.noteLoss(&s.targets[i].route, nowMono: slot.sentMono)
            }
        }
    }

    /// Starts the path rounds that are due and closes those timed out.
    private func advanceRoutes(_ s: inout State) {
        let now = clock.monotonicNs()
        for i in s.targets.indices where s.targets[i].active {
            let current = s.targets[i].current
            let path = s.targets[i].target.path
            rounds.advance(&s.targets[i].route, targetIndex: i, targetID: s.targets[i].target.id,
                           destination: current >= 0 ? s.targets[i].addresses[Int(current)] : nil,
                           nowMono: now, clock: clock, send: { destination, sequence, payload, ttl in
                               transport.sendEcho(to: destination, path: path, sequence: sequence, payload: payload, hopLimit: ttl)
                           }, baseSequence: UInt16(truncatingIfNeeded: s.targets[i].nextSequence), into: &s.batch)
        }
    }

    // MARK: Reload

    /// How far ahead of the reload an added target's first slot lies: the
    /// sender looks at the schedule again at least every 100 ms, so a slot
    /// this far ahead is never sent late.
    static let addLeadNs: Int64 = 200_000_000

    /// Starts probing a target on its next slot (at least addLeadNs ahead),
    /// and returns its index. A target this session probed before comes
    /// back with its offset, index and ring; a new one is appended, at the
    /// middle of the largest free stretch of the interval, so no target
    /// already probed moves (offsetInLargestGap). Offsets of removed targets
    /// stay taken: one that comes back (a line whose options changed is
    /// removed and added at once) never shares its slot with a newcomer.
    public func add(_ target: RecorderTarget, probedAs options: ProbeOptions = ProbeOptions()) -> Int {
        let monoNow = clock.monotonicNs(), wallNow = clock.wallNs()
        return state.withLock { s in
            let i: Int
            if let known = s.targets.firstIndex(where: { $0.target.id == target.id }) {
                i = known
                s.targets[i].target = target
            } else {
                let taken = s.targets.map(\.offsetNs)
                s.targets.append(TargetState(
                    target: target, offsetNs: offsetInLargestGap(taken, intervalNs: config.intervalNs),
                    ring: SlotRing(capacity: ringCapacity), replied: ReplyBits(count: Int(window))))
                i = s.targets.count - 1
            }
            let since = monoNow + Self.addLeadNs - s.startMono - s.targets[i].offsetNs
            let next = since <= 0 ? 0 : UInt64((since + config.intervalNs - 1) / config.intervalNs)
            s.targets[i].nextSequence = max(s.targets[i].nextSequence, next)
            s.targets[i].route.nextRoundMono = max(s.targets[i].route.nextRoundMono, slotTime(s, s.targets[i], s.targets[i].nextSequence))
            s.targets[i].active = true
            s.targets[i].failingSince = 0
            s.targets[i].icmpErrorStreak = 0
            let firstSlotWall = wallNow + slotTime(s, s.targets[i], s.targets[i].nextSequence) - monoNow
            s.batch.targetChanges.append(.added(
                SessionTargetRecord(sessionID: sessionID, targetID: target.id, offsetNs: s.targets[i].offsetNs,
                                    source: options.source?.text, interface: options.interface, tos: options.tos.map(Int.init)),
                startNs: firstSlotWall))
            return i
        }
    }

    /// Stops probing a target: no slot of it after now. Its coverage ends
    /// now; its probes already sent keep their replies coming.
    public func remove(target index: Int) {
        let wallNow = clock.wallNs()
        state.withLock { s in
            guard s.targets[index].active else { return }
            s.targets[index].active = false
            // Its round in flight is stored as it stands: no deadline closes it now.
            rounds.close(&s.targets[index].route, into: &s.batch)
            s.batch.targetChanges.append(.removed(targetID: s.targets[index].target.id, endNs: wallNow))
        }
    }

    // MARK: Matching

    /// Matches what the transport received. Call right after `receive`
    /// returns: the clocks read here anchor the kernel's receive stamps.
    public func handle(_ packets: [Incoming]) {
        guard !packets.isEmpty else { return }
        let monoNow = clock.monotonicNs()
        let wallNow = clock.wallNs()
        state.withLock { s in
            for packet in packets {
                if !match(&s, packet, monoNow: monoNow, wallNow: wallNow) {
                    s.batch.foreignPackets += 1
                }
            }
        }
    }

    /// The receive time on the monotonic axis (see RecorderClock).
    ///
    /// The kernel's stamp is trusted when it lies between the probe's send and
    /// now. That bound, not a fixed one, matters: after SIGSTOP or a long
    /// scheduling stall, replies wait seconds in the socket buffer and their
    /// true RTT is the kernel's, not "when we finally read them" (a fixed 1 s
    /// bound turned a 0.1 ms loopback reply read after a 3 s stop into a 3 s
    /// late reply). A wall-clock step between stamp and read larger than the
    /// RTT puts the delay outside the bound and we fall back to now.
    private func receivedMono(_ kernelWall: Int64?, monoNow: Int64, wallNow: Int64, sentMono: Int64) -> Int64 {
        guard let kernelWall else { return monoNow }
        let delay = wallNow - kernelWall
        return (0...max(0, monoNow - sentMono)).contains(delay) ? monoNow - delay : monoNow
    }

    private func match(_ s: inout State, _ packet: Incoming, monoNow: Int64, wallNow: Int64) -> Bool {
        switch packet {
        case .foreign:
            return false

        case let .echoReply(from, identifier, sequence, payload, kernelNs):
            if ProbePayload.isPathPayload(payload) {
                guard let p = ProbePayload.decode(payload, expectedSize: config.payloadSize) else { return false }
                return matchPath(&s, p, identifier: identifier, sequence: sequence, from: from, authenticFor: from,
                                 type: ICMPType.echoReply(for: from.family).rawValue, code: 0, kernelNs: kernelNs,
                                 monoNow: monoNow, wallNow: wallNow)
            }
            guard let p = ProbePayload.decode(payload, expectedSize: config.payloadSize),
                  p.runID == config.runID,
                  Int(p.targetIndex) < s.targets.count,
                  // Sent on this target's path: a copy of another path's
                  // reply (every raw socket sees it) is not this target's.
                  identifier == transport.identifier(for: from.family, path: s.targets[Int(p.targetIndex)].target.path),
                  UInt16(truncatingIfNeeded: p.sequence) == sequence,
                  inWindow(s.targets[Int(p.targetIndex)], p.sequence),
                  p.isAuthentic(key: config.key, address: from)
            else { return false }
            let ti = Int(p.targetIndex)
            let rtt = max(0, receivedMono(kernelNs, monoNow: monoNow, wallNow: wallNow, sentMono: p.sentMonoNs) - p.sentMonoNs)
            let targetID = s.targets[ti].target.id
            let duplicate = s.targets[ti].replied.testAndSet(p.sequence)
            // The first reply goes into the probe's row while that row is
            // still in the unwritten batch (its slot says where); otherwise
            // it is a reply row, which reports read the same way.
            let slot = s.targets[ti].ring[Int(p.sequence % UInt64(ringCapacity))]
            if !duplicate && slot.holds(p.sequence, capacity: ringCapacity) && slot.generation == s.generation {
                s.batch.probes[Int(slot.rowIndex)].rttNs = rtt
            } else {
                s.batch.replies.append(ReplyRecord(sentNs: p.sentWallNs, targetID: targetID, rttNs: rtt))
            }
            s.repliesMatched += 1
            if s.targets[ti].icmpErrorStreak > 0 {
                s.events.append(.icmpErrorsEnded(target: s.targets[ti].target.name, errors: s.targets[ti].icmpErrorStreak))
                s.targets[ti].icmpErrorStreak = 0
            }
            if verbose {
                s.events.append(.reply(target: s.targets[ti].target.name, sequence: p.sequence, rttNs: rtt, duplicate: duplicate))
            }
            return true

        case let .icmpError(family, type, code, reporter, destination, identifier, sequence, quoted, kernelNs):
            if rounds.isOn, let matched = matchPathError(&s, family: family, type: type, code: code, reporter: reporter,
                                                          destination: destination, identifier: identifier, sequence: sequence,
                                                          quoted: quoted, kernelNs: kernelNs, monoNow: monoNow, wallNow: wallNow) {
                return matched
            }
            guard let (ti, k, sentMono, sentWall) = findErrorProbe(s, destination: destination, sequence: sequence, quoted: quoted,
                                                                   identifier: identifier, family: family)
            else { return false }
            let rtt = max(0, receivedMono(kernelNs, monoNow: monoNow, wallNow: wallNow, sentMono: sentMono) - sentMono)
            s.batch.icmpErrors.append(ICMPErrorRecord(
                sentNs: sentWall, targetID: s.targets[ti].target.id, rttNs: rtt,
                family: family.rawValue, type: type, code: code, source: reporter.text))
            let name = s.targets[ti].target.name
            if s.targets[ti].icmpErrorStreak == 0 {
                s.events.append(.icmpErrorsBegan(target: name, family: family, type: type, code: code, reporter: reporter))
            }
            s.targets[ti].icmpErrorStreak += 1
            if verbose {
                s.events.append(.icmpError(target: name, sequence: k,
                                           family: family, type: type, code: code, reporter: reporter))
            }
            return true
        }
    }

    /// An answer to a path probe whose payload came back (an echo reply, or
    /// an error that quoted it), checked as a probe's reply is.
    private func matchPath(_ s: inout State, _ p: ProbePayload, identifier: UInt16, sequence: UInt16, from: IPAddress,
                           authenticFor address: IPAddress, type: UInt8, code: UInt8, kernelNs: Int64?,
                           monoNow: Int64, wallNow: Int64) -> Bool {
        let ti = Int(p.targetIndex)
        guard p.isPath, p.runID == config.runID, ti < s.targets.count,
              identifier == transport.identifier(for: address.family, path: s.targets[ti].target.path),
              p.isAuthentic(key: config.key, address: address) else { return false }
        return rounds.answer(&s.targets[ti].route, round: p.sequence >> 8, ttl: Int(p.sequence & 0xFF), sequence: sequence,
                             from: from, type: type, code: code, rtt: { sent in
                                 self.receivedMono(kernelNs, monoNow: monoNow, wallNow: wallNow, sentMono: sent) - sent
                             }, into: &s.batch)
    }

    /// An ICMP error (time exceeded, mostly) for a path probe: by its quoted
    /// payload, or, quoting the echo header alone, by destination,
    /// identifier and 16-bit sequence among the rounds in flight. nil: not
    /// a path probe's, the target's probes may match it.
    private func matchPathError(_ s: inout State, family: IPFamily, type: UInt8, code: UInt8, reporter: IPAddress,
                                destination: IPAddress, identifier: UInt16, sequence: UInt16, quoted: [UInt8],
                                kernelNs: Int64?, monoNow: Int64, wallNow: Int64) -> Bool? {
        if ProbePayload.isPathPayload(quoted) {
            guard let p = ProbePayload.decodeQuoted(quoted) else { return false }
            return matchPath(&s, p, identifier: identifier, sequence: sequence, from: reporter, authenticFor: destination,
                             type: type, code: code, kernelNs: kernelNs, monoNow: monoNow, wallNow: wallNow)
        }
        guard ProbePayload.decodeQuoted(quoted) == nil else { return nil }
        for ti in s.targets.indices {
            guard let round = s.targets[ti].route.round,
                  round.destination == destination || (destination.scopeID == 0 && round.destination.bytes == destination.bytes),
                  identifier == transport.identifier(for: family, path: s.targets[ti].target.path),
                  round.probes.contains(where: { $0.sequence == sequence }) else { continue }
            return rounds.answer(&s.targets[ti].route, round: nil, ttl: nil, sequence: sequence, from: reporter,
                                 type: type, code: code, rtt: { sent in
                                     self.receivedMono(kernelNs, monoNow: monoNow, wallNow: wallNow, sentMono: sent) - sent
                                 }, into: &s.batch)
        }
        return nil
    }

    /// True when probe k of the target was sent and is one of its `window`
    /// newest probes.
    private func inWindow(_ t: TargetState, _ k: UInt64) -> Bool {
        k < t.nextSequence && t.nextSequence - k <= window
    }

    /// Finds the probe an ICMP error quotes: target index, sequence, and its
    /// send times (monotonic, wall). With the payload quoted (ICMPv6, RFC
    /// 1812 routers) the match is exact and the payload brings the times;
    /// with only the 8-byte echo header (all RFC 792 requires) it is the
    /// target by destination address plus the one recent probe with that
    /// 16-bit sequence: the ring holds at most 65536 probes per target, so
    /// that probe is unique. Only targets whose path carries `identifier`
    /// are candidates: two targets may share an address on two paths.
    private func findErrorProbe(_ s: State, destination: IPAddress, sequence: UInt16, quoted: [UInt8],
                                identifier: UInt16, family: IPFamily) -> (Int, UInt64, Int64, Int64)? {
        func onPath(_ ti: Int) -> Bool { identifier == transport.identifier(for: family, path: s.targets[ti].target.path) }
        if let p = ProbePayload.decodeQuoted(quoted) {
            guard !p.isPath, p.runID == config.runID, Int(p.targetIndex) < s.targets.count, onPath(Int(p.targetIndex)),
                  UInt16(truncatingIfNeeded: p.sequence) == sequence,
                  inWindow(s.targets[Int(p.targetIndex)], p.sequence),
                  p.isAuthentic(key: config.key, address: destination) else { return nil }
            return (Int(p.targetIndex), p.sequence, p.sentMonoNs, p.sentWallNs)
        }
        // A quote that is not decodable (cut short, or followed by RFC 4884
        // extension bytes we cannot strip without the IP header) falls back
        // to the header-only match below.
        for ti in s.targets.indices where onPath(ti) {
            let t = s.targets[ti]  // read-only; the ring is shared, not copied
            // A quoted IPv6 header carries no zone: a link-local quote is
            // about the address with any zone (the payload's tag decides).
            guard let a = t.addresses.firstIndex(where: { $0 == destination || (destination.scopeID == 0 && $0.bytes == destination.bytes) }),
                  t.nextSequence > 0 else { continue }
            let last = t.nextSequence - 1
            let back = UInt64(UInt16(truncatingIfNeeded: last) &- sequence)
            guard back <= last else { continue }
            let k = last - back
            let r = Int(k % UInt64(ringCapacity))
            let slot = t.ring[r]
            if slot.holds(k, capacity: ringCapacity) && slot.address == Int32(a) { return (ti, k, slot.sentMono, slot.sentWall) }
        }
        return nil
    }

    // MARK: Batches

    /// Takes everything not yet written, stamped with a heartbeat. Probes in
    /// it can no longer take their first reply in place: later replies for
    /// them become `reply` rows.
    public func cutBatch() -> WriteBatch {
        let wall = clock.wallNs()
        return state.withLock { s in
            var batch = s.batch
            batch.heartbeatNs = wall
            s.batch = WriteBatch()
            s.generation &+= 1
            return batch
        }
    }

    /// Events since the last call, for the log.
    public func takeEvents() -> [EngineEvent] {
        state.withLock { s in
            let e = s.events
            s.events.removeAll()
            return e
        }
    }
}
