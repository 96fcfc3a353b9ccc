// The path history of `generate --paths`: rounds scheduled as the recorder's
// PathRounds schedules them (every --path-interval, and every --interval
// while the target is losing probes, by the recorder's own LossCadence), 12 hops sent a few µs
// apart, routers whose time-exceeded RTTs are steady with a slow path now
// and then, a hop that rate-limits, on some targets one that never answers
// and one with two addresses (ECMP), and in each of the target's outages
// loss that begins at one hop and goes on to the target. Written in the
// probes' own batches, and compacted by the Store's compaction like them.

import Foundation
import Recorder
import Store

struct PathSynthesizer {
    static let hops = 12

    let o: GenerateOptions
    let intervalNs: Int64
    let outages: [[PlannedOutage]]
    let targets: [TargetRecord]
    var rng: Random
    /// Per target: when its next round is due, until when it is losing, and
    /// the next outage that has not ended.
    var nextRound: [Int64]
    var losing: [LossCadence]
    var nextOutage: [Int]
    /// Per target and hop: the router's base RTT, and whether its address
    /// has been recorded in path_hop yet.
    var baseRTT: [[Int64]]
    var noted: [Set<Int>]
    private(set) var written = 0

    init(_ o: GenerateOptions, intervalNs: Int64, outages: [[PlannedOutage]], targets: [TargetRecord]) {
        self.o = o
        self.intervalNs = intervalNs
        self.outages = outages
        self.targets = targets
        rng = Random(seed: o.seed ^ 0x5041_5448_5300_0000)
        nextRound = Array(repeating: .max, count: targets.count)
        losing = Array(repeating: LossCadence(), count: targets.count)
        nextOutage = Array(repeating: 0, count: targets.count)
        noted = Array(repeating: [], count: targets.count)
        var bases: [[Int64]] = []
        for _ in targets {
            // Access link first, then the path's share of the target's RTT.
            bases.append((1...Self.hops).map { ttl in
                ttl == 1 ? 400_000 : Int64(Double(o.rttNs) * (0.2 + 0.8 * Double(ttl) / Double(Self.hops)))
            })
        }
        baseRTT = bases
    }

    /// A recorder (re)starts: every target's first round at once, spread
    /// like its probes.
    mutating func begin(_ startNs: Int64) {
        for i in targets.indices {
            nextRound[i] = startNs + Int64(i) * o.intervalNs / Int64(targets.count) + 1_000_000
            losing[i] = LossCadence()
        }
    }

    /// The rounds that began before `endNs`, given the batch's lost probes
    /// (by target, in send order), into `batch`.
    mutating func addRounds(until endNs: Int64, lost: [[Int64]], to batch: inout WriteBatch) {
        for i in targets.indices {
            var li = 0
            while true {
                // PathRounds.noteLoss: a loss that makes the target losing starts a round at once.
                if li < lost[i].count, lost[i][li] <= nextRound[i] {
                    if losing[i].noteLoss(at: lost[i][li], probeIntervalNs: o.intervalNs) { nextRound[i] = lost[i][li] }
                    li += 1
                    continue
                }
                guard nextRound[i] < endNs else { break }
                let roundNs = nextRound[i]
                addRound(target: i, at: roundNs, to: &batch)
                // The schedule's own noise: the sender wakes tens of µs late.
                let late = Int64(rng.exponential(mean: 40_000))
                nextRound[i] = roundNs + (losing[i].isLosing(at: roundNs) ? o.intervalNs : intervalNs) + late
            }
        }
    }

    private mutating func outage(of i: Int, at t: Int64) -> PlannedOutage? {
        let planned = outages[i]
        while nextOutage[i] < planned.count && planned[nextOutage[i]].end <= t { nextOutage[i] += 1 }
        guard nextOutage[i] < planned.count, planned[nextOutage[i]].start <= t else { return nil }
        return planned[nextOutage[i]]
    }

    private mutating func addRound(target i: Int, at roundNs: Int64, to batch: inout WriteBatch) {
        let id = targets[i].id
        // In an outage the loss begins at one hop (the same all outage long)
        // and goes on to the target; answered by unreachable, at the target.
        let lossFrom = outage(of: i, at: roundNs).map { $0.unreachable ? Self.hops : 2 + Int($0.start % 10) } ?? Int.max
        var sent = roundNs
        for ttl in 1...Self.hops {
            let toTarget = ttl == Self.hops
            var probe = PathProbeRecord(targetID: id, roundNs: roundNs, ttl: ttl, toTarget: toTarget, sentNs: sent)
            let rateLimited = ttl == 3 + i % 4 && rng.unit() < 0.4
            let silent = ttl == 7 && i % 3 == 0
            let lost = ttl >= lossFrom || (toTarget && rng.unit() < o.loss) || rng.unit() < 0.0005
            if !(rateLimited || silent || lost) {
                let rtt: Int64
                if toTarget {
                    let phase: Double = Double(sent % 86_400_000_000_000) / 86_400_000_000_000
                    let diurnal: Double = 1 + 0.25 * sin(2 * Double.pi * phase)
                    let jitter: Double = rng.normal() * Double(o.jitterNs)
                    rtt = max(100_000, Int64(Double(o.rttNs) * diurnal + jitter))
                } else {
                    // Time exceeded comes from the router's slow path: steady,
                    // but now and then a few ms late.
                    let slow = rng.unit() < 0.02 ? rng.exponential(mean: 3_000_000) : 0
                    rtt = baseRTT[i][ttl - 1] + Int64(rng.exponential(mean: 120_000) + slow)
                }
                let address = toTarget ? targets[i].host
                    : ttl == 1 ? "192.168.1.1"
                    : ttl == 6 && i % 2 == 1 && rng.unit() < 0.5 ? "100.64.\(i % 250).7"
                    : "100.64.\(i % 250).\(ttl)"
                probe.receivedNs = sent + rtt
                probe.from = address
                probe.icmpType = toTarget ? 0 : 11
                probe.icmpCode = 0
                probe.answer = toTarget ? .echoReply : .timeExceeded
                if !toTarget && !noted[i].contains(ttl) {
                    noted[i].insert(ttl)
                    batch.pathHops.append(PathHopRecord(targetID: id, ttl: ttl, sinceNs: roundNs, address: address))
                }
            }
            batch.pathProbes.append(probe)
            written += 1
            // Back to back: a send call takes a few µs.
            sent += 3_000 + Int64(rng.exponential(mean: 4_000))
        }
    }
}
