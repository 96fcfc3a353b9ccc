// The recorder's blocking loops, each run on a thread of its own until
// `stopping` is set: the sender, the receiver and the resolver. They share
// nothing but the engine (a Mutex inside) and the flag.

import Dispatch
import Foundation
import Glibc
import Synchronization

/// Starts the loops' threads; `wait()` returns once every joined one ended.
final class RecorderThreads: Sendable {
    let stopping = Atomic<Bool>(false)
    private let joined = DispatchGroup()

    /// `joined: false` for a thread the stop does not wait for.
    func spawn(_ name: String, joined isJoined: Bool = true, _ body: @escaping @Sendable () -> Void) {
        if isJoined { joined.enter() }
        let thread = Thread { [joined] in
            body()
            if isJoined { joined.leave() }
        }
        thread.name = name
        thread.start()
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Sets the flag and waits for the joined threads.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        joined.wait()
    }

    /// Where allowed (root, CAP_SYS_NICE, RLIMIT_RTPRIO), sender and
    /// receiver wake ahead of every ordinary thread: on a busy machine a
    /// waking CFS thread can wait milliseconds for a CPU, and each
    /// millisecond is a probe off its slot; a receiver left waiting for
    /// 0.4-0.7 s (seen at 10,000 probes/s while other builds ran) lets
    /// the socket buffer overflow and the kernel drop replies. Both sleep
    /// almost all the time (the receiver at least 10 ms after each read),
    /// so they cannot starve anyone. Refused: stay as we are.
    static func preferRealtime() {
        var priority = sched_param()
        priority.sched_priority = 1
        _ = pthread_setschedparam(pthread_self(), SCHED_FIFO, &priority)
    }
}

/// Sleeps to each slot on the monotonic clock and sends what is due.
struct Sender: Sendable {
    let engine: ProbeEngine
    let clock: any RecorderClock

    func run(_ threads: RecorderThreads) {
        // Only sendDue moves the schedule, and it says what is next.
        var deadline = engine.nextDeadline()
        while !threads.isStopping {
            // Sleep in short steps so a stop is noticed within 100 ms.
            let now = clock.monotonicNs()
            if deadline > now {
                let step = now + 100_000_000
                clock.sleep(untilMonotonicNs: min(deadline, step))
                // Woken before the deadline: a reload may have added a
                // target due sooner (ProbeEngine.addLeadNs).
                if deadline > step { deadline = engine.nextDeadline() }
                continue
            }
            deadline = engine.sendDue()
        }
    }
}

/// Polls the sockets and hands what comes back to the engine.
struct Receiver: Sendable {
    /// How long the receiver lets replies gather after reading some. Short
    /// enough that 10 ms of a 20,000 packets/s flood (FloodTests), about
    /// 200 KB of skbs, fits the socket buffer even where net.core.rmem_max
    /// is the stock 208 KiB (Linux doubles it: 416 KiB). Only after a read
    /// that emptied the queue: a full one reads on at once (see run).
    static let gatherNs: Int64 = 10_000_000

    let engine: ProbeEngine
    let transport: any ICMPTransport
    let clock: any RecorderClock

    func run(_ threads: RecorderThreads) {
        while !threads.isStopping {
            let packets = transport.receive(timeoutMilliseconds: 100)
            engine.handle(packets)
            // Having read something, let replies gather before the next
            // read: one wakeup and a few recvmmsg calls per period
            // instead of a wakeup and two recvmsg calls per reply (at
            // 1000 probes/s that was half the recorder's CPU time).
            // RTTs do not suffer: each packet keeps the kernel's receive
            // stamp, and its move onto the monotonic axis is exact
            // however late we read it (see RecorderClock).
            // A read that came back full left more in the queue: read on
            // at once. Gathering after it too capped the receiver at 256
            // packets per 10 ms plus the matching, and a flood a little
            // above that filled the buffer until the kernel dropped
            // replies (FloodTests at 20,000 packets/s, once matching a
            // packet cost a little more).
            if !packets.isEmpty && packets.count < ICMPSockets.maximumPacketsPerSocketPerReceive {
                clock.sleep(untilMonotonicNs: clock.monotonicNs() + Self.gatherNs)
            }
        }
        // One last non-blocking read: replies already queued in the kernel
        // when the signal came are received, not dropped.
        engine.handle(transport.receive(timeoutMilliseconds: 0))
    }
}

/// Re-resolves names every --resolve-every, and every min(10 s, that)
/// while a name or the sends to its address fail. Not joined at stop:
/// getaddrinfo may block for seconds when DNS is down, and nothing it does
/// must reach the last batch.
struct ResolverLoop: Sendable {
    /// The targets by engine index; a reload adds and removes them.
    let roster: TargetRoster
    let everyNs: Int64
    let families: Set<IPFamily>
    let engine: ProbeEngine
    let clock: any RecorderClock
    let log: @Sendable (String) -> Void

    private struct Schedule {
        var next: [Int64] = []
        var last: [Int64] = []
        var failing: [Bool] = []
        /// The roster generation each entry was scheduled for.
        var generation: [Int] = []

        /// A target just (re)added, looked up by the start or the reload:
        /// next in `every`, or in `retry` when that failed.
        mutating func begin(_ i: Int, _ entry: TargetRoster.Entry, now: Int64, every: Int64, retry: Int64) {
            if i == next.count { next.append(0); last.append(0); failing.append(false); generation.append(0) }
            next[i] = now + (entry.resolved ? every : retry)
            last[i] = now
            failing[i] = !entry.resolved
            generation[i] = entry.generation
        }
    }

    func run(_ threads: RecorderThreads) {
        let retry = min(10_000_000_000, everyNs)
        var schedule = Schedule()
        while !threads.isStopping {
            let now = clock.monotonicNs()
            for (i, entry) in roster.snapshot.enumerated() {
                if i >= schedule.next.count || schedule.generation[i] != entry.generation {
                    schedule.begin(i, entry, now: now, every: everyNs, retry: retry)
                }
                let spec = entry.spec
                guard entry.active, IPAddress(parsing: spec.host) == nil else { continue }
                // Every `every`; every `retry` while the name or the sends fail.
                let due = now >= schedule.next[i] || (engine.isFailing(target: i) && now - schedule.last[i] >= retry)
                guard due else { continue }
                schedule.last[i] = now
                lookUp(i, spec, now: now, retry: retry, &schedule)
            }
            clock.sleep(untilMonotonicNs: clock.monotonicNs() + 100_000_000)
        }
    }

    private func lookUp(_ i: Int, _ spec: TargetSpec, now: Int64, retry: Int64, _ schedule: inout Schedule) {
        let answer = resolve(host: spec.host, families: spec.families(of: families))
        // A reload that replaced the target meanwhile resolved it itself.
        guard roster.snapshot[i].spec == spec else { return }
        switch answer {
        case .resolved(let a):
            engine.setAddress(a, forTarget: i)
            if schedule.failing[i] { log("\(spec.name): \(spec.host) resolves again, to \(a.text)") }
            schedule.failing[i] = false
            schedule.next[i] = now + everyNs
        case .failed(let why, let nameGone):
            // A name that is gone is no longer probed at its old
            // address: its probes are "unresolved" loss. A resolver
            // that cannot answer (DNS down) says nothing about the
            // target, which keeps its last address.
            let cleared = nameGone && engine.clearAddress(forTarget: i)
            if !schedule.failing[i] {
                log(spec.doesNotResolve(why, nameGone: nameGone, atStart: false, then:
                    (cleared || engine.currentAddress(ofTarget: i) == nil
                        ? "its probes count as lost until it resolves; retrying every \(retry / 1_000_000_000)s"
                        : "still probing \(engine.currentAddress(ofTarget: i)!.text); retrying every \(retry / 1_000_000_000)s")))
            }
            schedule.failing[i] = true
            schedule.next[i] = now + retry
        case .lacks(let family):
            // Probed as a name that is gone: not at an address of the
            // other family, which would measure another path.
            engine.clearAddress(forTarget: i)
            if !schedule.failing[i] {
                log(spec.lacks(family, then: "its probes count as lost until it has one; retrying every \(retry / 1_000_000_000)s"))
            }
            schedule.failing[i] = true
            schedule.next[i] = now + retry
        }
    }
}
