// Path rounds added to a history made by `pingem-bench generate`, for the
// views' figures (the page's hop strips, `where` on outages): a round per
// target every `--path-interval` over the last `--days` (and at every probe
// during the target's outages), written through
// Store's own batch writing into each recorder session the rounds fall in
// (the heartbeat stays as it was). A path of `--hops` routers and the
// target: hop 2 rate-limits (answers 70 % of its probes), hop 5 never
// answers ("* * *"), and rounds lost from hop 8 onwards (forward loss) when
// their target probe was lost, and at random in 0.5 % of the others; RTTs
// grow by about 1.5 ms a hop. No packet is sent.

import ArgumentParser
import Foundation
import Reports
import Store

struct PathsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paths",
        abstract: "Add path rounds to a history made by pingem-bench generate (the views' benchmarks).")
    @Option(help: "Database made by pingem-bench generate (written to: use a copy).") var db: String
    @Option(help: "Days of rounds, ending where the history ends.") var days: Double = 7
    @Option(help: "Routers on each target's path (the target is one more hop).") var hops: Int = 12
    @Option(help: "Time between one target's rounds.") var pathInterval: String = "30s"
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func run() throws {
        guard FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("\(db) does not exist: make one with pingem-bench generate --days 7, and give a copy.")
        }
        guard (1...29).contains(hops) else { throw ValidationError("Give --hops from 1 to 29 (a path is at most 30 hops).") }
        guard let interval = try? parseDuration(pathInterval), interval > 0 else {
            throw ValidationError("Give --path-interval as a duration such as 30s.")
        }
        let clock = ContinuousClock()
        let began = clock.now
        let written = try writePathRounds(into: try Database(path: db, mode: .readWrite), days: days, hops: hops,
                                          intervalNs: interval, seed: seed)
        print("\(written) path probes in \(clock.now - began)")
    }
}

/// Writes the rounds; returns how many path probes it wrote. Rounds follow
/// the recorder's schedule: every `intervalNs`, and at every probe while the
/// target is in an outage (from its third lost probe in a row until a minute
/// after the last; the recorder starts at the first lost probe, which at the
/// generator's 0.5 % random loss would be most of the time), each round
/// lost from hop 8 on when its probe was lost.
private func writePathRounds(into db: Database, days: Double, hops: Int, intervalNs: Int64, seed: UInt64) throws -> Int {
    var rng = Random(seed: seed)
    let targets = try db.targets()
    let sessions = try db.sessions(overlapping: .min, .max).sorted { $0.startedNs < $1.startedNs }
    guard let end = sessions.map(\.endNs).max() else { return 0 }
    let from = end - Int64(days * 86_400e9)
    var written = 0
    for session in sessions where session.endNs > from {
        var batch = WriteBatch()
        func flush() throws {
            batch.heartbeatNs = session.heartbeatNs
            try db.write(batch, session: session.id)
            written += batch.pathProbes.count
            batch = WriteBatch()
        }
        for (t, target) in targets.enumerated() {
            var next = Int64.min, losingUntil = Int64.min, run = 0
            for probe in try db.probes(from: max(from, session.startedNs), to: session.endNs, targets: [target.id]) {
                let lost = probe.rttNs == nil
                run = lost ? run + 1 : 0
                if run >= 3 { losingUntil = probe.sentNs + 60_000_000_000 }
                guard probe.sentNs >= next || probe.sentNs < losingUntil else { continue }
                if probe.sentNs >= next { next = probe.sentNs / intervalNs * intervalNs + intervalNs }
                let lostFrom = lost || rng.unit() < 0.005 ? 8 : Int.max
                batch.pathProbes += pathRound(target, index: t, at: probe.sentNs + 1_000_000, hops: hops, lostFrom: lostFrom, rng: &rng)
                if batch.pathProbes.count >= 100_000 { try flush() }
            }
        }
        try flush()
    }
    return written
}

/// One round: hop 2 rate-limits, hop 5 never answers, every probe from
/// `lostFrom` on is lost.
private func pathRound(_ target: TargetRecord, index t: Int, at start: Int64, hops: Int, lostFrom: Int,
                       rng: inout Random) -> [PathProbeRecord] {
    (1...(hops + 1)).map { ttl in
        let sent = start + Int64(ttl - 1) * 100_000
        let toTarget = ttl == hops + 1
        var probe = PathProbeRecord(targetID: target.id, roundNs: start, ttl: ttl, toTarget: toTarget, sentNs: sent)
        let quiet = ttl == 5 || (ttl == 2 && rng.unit() < 0.3)
        if ttl < lostFrom && !quiet {
            probe.receivedNs = sent + Int64((1.5 * Double(ttl) + rng.unit()) * 1e6)
            probe.from = toTarget ? target.host : "10.\(t).\(ttl).1"
            probe.answer = toTarget ? .echoReply : .timeExceeded
            probe.icmpType = toTarget ? 0 : 11
            probe.icmpCode = 0
        }
        return probe
    }
}
