// A realistic synthetic history, written through the same Store code the
// recorder uses: send times off their slots by a scheduling error of tens
// of microseconds, RTTs with a diurnal swing and jitter at full nanosecond
// resolution, random loss, a few outages with ICMP errors, recorder restarts
// (gaps), duplicates and late replies. Storage and query figures only mean
// something on data this noisy: a clean grid would compress unrealistically.

import Foundation
import Store

/// xoshiro256** seeded by SplitMix64: fast, reproducible across runs.
struct Random {
    var s: (UInt64, UInt64, UInt64, UInt64)
    init(seed: UInt64) {
        var x = seed
        func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (next(), next(), next(), next())
    }
    mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3; s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
    /// Standard normal (Box-Muller).
    mutating func normal() -> Double {
        let u = max(unit(), 1e-300), v = unit()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
    mutating func exponential(mean: Double) -> Double { -log(max(unit(), 1e-300)) * mean }
}

struct GenerateOptions {
    var targets: Int
    var days: Double
    var intervalNs: Int64
    var rttNs: Int64
    var jitterNs: Int64
    var loss: Double          // fraction, 0.005 for 0.5 %
    var seed: UInt64
    var endNs: Int64          // history ends here (now)
    /// Compact hours into blocks as the recorder does (those that ended more
    /// than 30 minutes before the history's "now" at each batch), so a long
    /// history never sits in plain rows. Off only to measure plain rows.
    var compact = true
    /// Record path rounds too (PathSynthesizer) every this often, nil: none.
    var pathIntervalNs: Int64? = nil
}

struct GenerateResult {
    var probes: Int = 0
    var pathProbes: Int = 0
    var replies: Int = 0
    var lost: Int = 0
    var summarizedHours = 0
    var summarySeconds: Double = 0
    var seconds: Double = 0
}

private let dayNs: Int64 = 86_400_000_000_000
private let flushNs: Int64 = 1_000_000_000

/// Writes the history into `db` (an empty pingem database). The random draws
/// come in a fixed order (sessions, outages, then probe by probe), so a seed
/// always gives the same history.
func generateHistory(into db: Database, _ o: GenerateOptions, progress: ((Double) -> Void)? = nil) throws -> GenerateResult {
    var rng = Random(seed: o.seed)
    let totalNs = Int64(o.days * Double(dayNs))
    let startNs = (o.endNs - totalNs) / o.intervalNs * o.intervalNs
    var targets: [TargetRecord] = []
    for i in 0..<o.targets {
        targets.append(try db.target(name: "bench-\(i + 1)", host: "198.18.\(i / 250).\(i % 250 + 1)"))
    }
    let sessions = plannedSessions(from: startNs, to: o.endNs, intervalNs: o.intervalNs, rng: &rng)
    let outages = plannedOutages(from: startNs, totalNs: totalNs, o, rng: &rng)
    var synthesizer = ProbeSynthesizer(o, outages: outages)
    // Paths draw from their own generator: the probes are the same with and without them.
    synthesizer.paths = o.pathIntervalNs.map { PathSynthesizer(o, intervalNs: $0, outages: outages, targets: targets) }
    let clock = ContinuousClock()
    let began = clock.now
    for (si, session) in sessions.enumerated() {
        let id = try db.beginSession(
            NewSession(runID: rng.next(), pid: 4242, hostname: "bench", version: "bench",
                       socketKind: "raw", intervalNs: o.intervalNs, payloadBytes: 56,
                       startedNs: session.start),
            targets: targets.enumerated().map { i, tr in
                SessionTargetRecord(sessionID: 0, targetID: tr.id, offsetNs: Int64(Double(i) * synthesizer.perTarget))
            })
        if si == 0 {
            var first = WriteBatch()
            first.addresses = targets.map { AddressRecord(targetID: $0.id, sinceNs: startNs - 1, address: $0.host) }
            first.heartbeatNs = session.start
            try db.write(first, session: id)
        }
        try synthesizer.writeSession(session, id: id, targets: targets, into: db, rng: &rng) { heartbeatNs in
            progress?(Double(heartbeatNs - startNs) / Double(totalNs))
        }
        try db.endSession(id, stoppedNs: session.end)
    }
    if o.compact { try db.compact(hoursEndingBefore: o.endNs - 30 * 60 * 1_000_000_000, limit: .max) }
    var result = synthesizer.result
    result.pathProbes = synthesizer.paths?.written ?? 0
    result.seconds = seconds(clock.now - began)
    // Hourly summaries of the whole history, as the recorder would have
    // written them while recording (timed apart from the ingest).
    let summarizing = clock.now
    result.summarizedHours = try db.summarizeHours(endingBy: o.endNs, maxHours: .max)
    result.summarySeconds = seconds(clock.now - summarizing)
    return result
}

/// Recorder sessions: a restart every ~3 days, 1 to 5 minutes apart.
private func plannedSessions(from startNs: Int64, to endNs: Int64, intervalNs: Int64,
                             rng: inout Random) -> [(start: Int64, end: Int64)] {
    var sessions: [(start: Int64, end: Int64)] = []
    var t = startNs
    while t < endNs {
        let length = Int64((2.0 + rng.unit() * 2.0) * Double(dayNs))
        let end = min(endNs, t + length)
        sessions.append((t, end))
        t = end + Int64(60 + rng.unit() * 240) * 1_000_000_000
        t = (t + intervalNs - 1) / intervalNs * intervalNs
    }
    return sessions
}

/// One outage of a target: [start, end), and whether a router answers its
/// probes with host unreachable.
struct PlannedOutage {
    var start: Int64
    var end: Int64
    var unreachable: Bool
}

/// About two outages a day per target, 20 s to 3 min, half of them answered
/// by a router with host unreachable; by start, per target.
private func plannedOutages(from startNs: Int64, totalNs: Int64, _ o: GenerateOptions,
                            rng: inout Random) -> [[PlannedOutage]] {
    var outages: [[PlannedOutage]] = Array(repeating: [], count: o.targets)
    for i in 0..<o.targets {
        let count = max(1, Int(o.days * 2))
        for _ in 0..<count {
            let s = startNs + Int64(rng.unit() * Double(totalNs))
            outages[i].append(PlannedOutage(start: s, end: s + Int64((20 + rng.unit() * 160) * 1e9), unreachable: rng.unit() < 0.5))
        }
        outages[i].sort { $0.start < $1.start }
    }
    return outages
}

/// Draws every probe of the history and its fate, batch by batch, as the
/// recorder would have written them.
private struct ProbeSynthesizer {
    let o: GenerateOptions
    let outages: [[PlannedOutage]]
    /// Each target's next outage that has not ended: time only moves forward.
    var nextOutage: [Int]
    var result = GenerateResult()
    /// Targets are spread evenly over the interval.
    let perTarget: Double
    /// ~100k probes per transaction.
    let batchSlots: Int64
    var paths: PathSynthesizer? = nil
    /// The send times of the batch's lost probes, by target: what makes the
    /// recorder run rounds every --interval.
    var lostInBatch: [[Int64]]

    init(_ o: GenerateOptions, outages: [[PlannedOutage]]) {
        self.o = o
        self.outages = outages
        nextOutage = [Int](repeating: 0, count: o.targets)
        perTarget = Double(o.intervalNs) / Double(o.targets)
        batchSlots = Int64(max(1, 100_000 / o.targets))
        lostInBatch = Array(repeating: [], count: o.targets)
    }

    mutating func writeSession(_ session: (start: Int64, end: Int64), id: Int64, targets: [TargetRecord],
                               into db: Database, rng: inout Random, progress: (Int64) -> Void) throws {
        let slots = (session.end - session.start) / o.intervalNs
        var k: Int64 = 0
        var pendingLate: [ReplyRecord] = []
        paths?.begin(session.start)
        while k < slots {
            var batch = WriteBatch()
            let upto = min(slots, k + batchSlots)
            while k < upto {
                let slot = session.start + k * o.intervalNs
                for (i, target) in targets.enumerated() {
                    addProbe(slot: slot, target: i, id: target.id, to: &batch, late: &pendingLate, rng: &rng)
                }
                k += 1
            }
            batch.replies = pendingLate
            pendingLate = []
            batch.heartbeatNs = session.start + k * o.intervalNs
            paths?.addRounds(until: batch.heartbeatNs, lost: lostInBatch, to: &batch)
            for i in lostInBatch.indices { lostInBatch[i].removeAll(keepingCapacity: true) }
            try db.write(batch, session: id)
            // The recorder's own maintenance call, with the batch's time as now.
            if o.compact { try db.compact(hoursEndingBefore: batch.heartbeatNs - 30 * 60 * 1_000_000_000, limit: .max) }
            progress(batch.heartbeatNs)
        }
    }

    /// One probe of target number `index` in `slot`: lost in an outage (with
    /// an ICMP error when a router answers), lost at random, or answered,
    /// late, or answered twice. A reply after its probe's batch was cut goes
    /// to `late`, which the next batch writes as reply rows.
    private mutating func addProbe(slot: Int64, target index: Int, id: Int64, to batch: inout WriteBatch,
                                   late pendingLate: inout [ReplyRecord], rng: inout Random) {
        // Scheduling error: tens of microseconds, occasionally more.
        let sent = slot + Int64(Double(index) * perTarget) + Int64(rng.exponential(mean: 30_000))
        var probe = ProbeRecord(sentNs: sent, targetID: id)
        result.probes += 1
        if let outage = outage(of: index, at: sent) {
            result.lost += 1
            lostInBatch[index].append(sent)
            if outage.unreachable {
                batch.icmpErrors.append(ICMPErrorRecord(
                    sentNs: sent, targetID: id, rttNs: Int64(1_000_000 + rng.unit() * 4_000_000),
                    family: 4, type: 3, code: 1, source: "198.18.255.1"))
            }
        } else if rng.unit() < o.loss {
            result.lost += 1
            lostInBatch[index].append(sent)
        } else {
            let phase = Double(sent % dayNs) / Double(dayNs)
            let diurnal = 1 + 0.25 * sin(2 * .pi * phase)
            let rtt = max(100_000, Int64(Double(o.rttNs) * diurnal + rng.normal() * Double(o.jitterNs)))
            let late = rng.unit() < 0.0002
            let rttNs = late ? Int64(3e9 + rng.unit() * 7e9) : rtt
            result.replies += 1
            if (sent + rttNs) / flushNs != sent / flushNs || late {
                pendingLate.append(ReplyRecord(sentNs: sent, targetID: id, rttNs: rttNs))
            } else {
                probe.rttNs = rttNs
            }
            if rng.unit() < 0.0001 {
                pendingLate.append(ReplyRecord(sentNs: sent, targetID: id, rttNs: rttNs + Int64(rng.unit() * 5e6)))
            }
        }
        batch.probes.append(probe)
    }

    /// The outage target `index` is in at `sent`, if any.
    private mutating func outage(of index: Int, at sent: Int64) -> PlannedOutage? {
        let planned = outages[index]
        while nextOutage[index] < planned.count && planned[nextOutage[index]].end <= sent { nextOutage[index] += 1 }
        guard nextOutage[index] < planned.count, planned[nextOutage[index]].start <= sent else { return nil }
        return planned[nextOutage[index]]
    }
}
