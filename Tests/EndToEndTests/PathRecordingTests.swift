// pingem record's path rounds against the responder's routers (issue 13),
// on raw sockets (root) and datagram sockets (nobody, in a namespace whose
// ping_group_range the test opened): every stored path probe is one the
// responder saw, answered exactly when and by whom the responder says, and
// the targets' own probes are exactly the responder's ordinary requests.
import Foundation
import Glibc
import Testing
import TestSupport
import Store
@testable import pingem_responder

@Suite(.serialized) struct PathRecordingTests {
    /// v4: four routers, the second quoting 8 bytes (RFC 792), the third
    /// rate-limiting (every 2nd), the fourth silent, and forwarding loss from
    /// hop 3 in every 3rd round; v6: three routers, the second quoting 8
    /// bytes, the third silent; a plain v4 target is its own first hop.
    static let destinations: [ResponderDestination] = [
        .init(address: "198.18.0.60", behaviour: .clean, path: PathConfig(hops: [
            HopConfig(address: "198.18.0.101"), HopConfig(address: "198.18.0.102", quote_bytes: 8),
            HopConfig(address: "198.18.0.103", answer_every: 2), HopConfig(address: "198.18.0.104", silent: true),
        ], loss_from_ttl: 3, loss_every: 3)),
        .init(address: "fd00:18::60", behaviour: .clean, path: PathConfig(hops: [
            HopConfig(address: "fd00:18::101"), HopConfig(address: "fd00:18::102", quote_bytes: 8),
            HopConfig(address: "fd00:18::103", silent: true),
        ])),
        .init(address: "198.18.0.61", behaviour: .clean),
        // A gateway outage every 2nd round, behind it a router that rate-limits.
        .init(address: "198.18.0.62", behaviour: .clean, path: PathConfig(hops: [
            HopConfig(address: "198.18.0.111"), HopConfig(address: "198.18.0.112", answer_every: 2),
        ], loss_from_ttl: 1, loss_every: 2)),
        // Loss at the far end only, every 2nd round.
        .init(address: "fd00:18::62", behaviour: .clean, path: PathConfig(hops: [
            HopConfig(address: "fd00:18::111"), HopConfig(address: "fd00:18::112"),
        ], loss_from_ttl: 3, loss_every: 2)),
    ]
    static let targets = ["far4": "198.18.0.60", "far6": "fd00:18::60", "near4": "198.18.0.61",
                          "gw4": "198.18.0.62", "end6": "fd00:18::62"]

    @Test(arguments: ["raw", "datagram"]) func everyHopAsTheRespondersLogSays(kind: String) throws {
        let namespace = try TestNamespace(pingSockets: kind == "datagram")
        defer { namespace.destroy() }
        let responder = try namespace.startResponder(Self.destinations)
        let (command, db) = try recorderCommand(kind, in: namespace, database: "paths.db")
        let recorder = try namespace.start(command + ["record"] + Self.targets.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            + ["--db", db, "--interval", "200ms", "--path-interval", "1s", "--flush", "500ms"], label: "record-\(kind)")
        usleep(9_000_000)
        recorder.signal(SIGINT)
        let exit = recorder.wait(timeout: 30)
        try #require(exit == 0, "pingem record exited \(exit): \(recorder.stderr)")
        let log = try responder.stop()
        let pathLog = try responder.readPathLog()
        let database = try Database(path: db, mode: .readOnly)
        #expect(try database.sessions(overlapping: 0, .max).map(\.socketKind) == [kind])
        let ids = Dictionary(uniqueKeysWithValues: try database.targets().map { ($0.name, $0.id) })
        let rows = try database.pathProbes(targets: nil, from: 0, to: .max)
        let hops = try database.pathHops(targets: nil)

        for (label, address) in Self.targets {
            let id = try #require(ids[label])
            let mine = rows.filter { $0.targetID == id }
            let lines = pathLog.filter { $0.destination == address }
            try #require(mine.count >= 5, "\(label): \(mine.count) path probes stored")
            // Paris traceroute: one identifier and one checksum on the wire.
            #expect(Set(lines.map(\.icmp_id)).count == 1 && Set(lines.map(\.checksum)).count == 1, "\(label)")
            expectRowsAsLogged(mine, lines, label)
            // Every round is TTL 1 up to the target, the target's probe last.
            let rounds = Dictionary(grouping: mine, by: \.roundNs).values.map { $0.sorted { $0.ttl < $1.ttl } }
            let distance = ["far4": 5, "far6": 4, "near4": 1, "gw4": 3, "end6": 3][label]!
            for round in rounds {
                #expect(round.map(\.ttl) == Array(1...distance), "\(label): round of \(round.map(\.ttl))")
                #expect(round.map(\.toTarget) == Array(repeating: false, count: distance - 1) + [true])
            }
            // Each answering router's address, once; the silent one none.
            let routerAddresses = hops.filter { $0.targetID == id }.sorted { $0.ttl < $1.ttl }
            let expected = ["far4": ["198.18.0.101", "198.18.0.102", "198.18.0.103"],
                            "far6": ["fd00:18::101", "fd00:18::102"], "near4": [],
                            "gw4": ["198.18.0.111", "198.18.0.112"], "end6": ["fd00:18::111", "fd00:18::112"]][label]!
            #expect(routerAddresses.map(\.address) == expected, "\(label): hops \(routerAddresses)")
            // The target's own probes: exactly the responder's ordinary requests.
            let probes = try database.probes(from: 0, to: .max, targets: [id])
            #expect(probes.count == log.filter { $0.destination == address }.count, "\(label): probes")
            #expect(probes.count >= 30)
        }
        let far4 = rows.filter { $0.targetID == ids["far4"] }
        // The rate limit, the silent router and the forwarding loss all show.
        #expect(far4.contains { $0.ttl == 3 && $0.receivedNs == nil } && far4.contains { $0.ttl == 3 && $0.receivedNs != nil })
        #expect(far4.allSatisfy { $0.ttl != 4 || $0.receivedNs == nil })
        #expect(far4.contains { $0.ttl == 5 && $0.receivedNs == nil } && far4.contains { $0.ttl == 5 && $0.receivedNs != nil })
        // The gateway's outage loses whole rounds; the far end's, the target's probe alone.
        let gw4 = Dictionary(grouping: rows.filter { $0.targetID == ids["gw4"] }, by: \.roundNs).values
        #expect(gw4.contains { $0.allSatisfy { $0.receivedNs == nil } } && gw4.contains { $0.last { $0.toTarget }?.receivedNs != nil })
        let end6 = Dictionary(grouping: rows.filter { $0.targetID == ids["end6"] }, by: \.roundNs).values
        #expect(end6.contains { round in round.allSatisfy { $0.toTarget == ($0.receivedNs == nil) } })
    }

    /// Each stored probe is the one line of its TTL the responder read within
    /// 100 ms of its send, and answered exactly as that line says; per TTL,
    /// as many answers stored as the responder sent.
    func expectRowsAsLogged(_ rows: [PathProbeRecord], _ lines: [PathLogLine], _ label: String) {
        var answeredByTTL: [Int: Int] = [:], loggedByTTL: [Int: Int] = [:]
        for row in rows {
            #expect(row.sendError == nil, "\(label): ttl \(row.ttl) not sent: errno \(row.sendError ?? 0)")
            let near = lines.filter { $0.ttl == row.ttl && abs($0.time_ns - row.sentNs) < 100_000_000 }
            guard near.count == 1, let line = near.first else {
                Issue.record("\(label): ttl \(row.ttl) at \(row.sentNs) matches \(near.count) responder lines"); continue
            }
            #expect(row.from == line.answered_by, "\(label) ttl \(row.ttl): stored \(row.from ?? "-"), responder \(line.action)")
            #expect(row.answer == (line.action == "reply" ? .echoReply : line.action == "time-exceeded" ? .timeExceeded : nil))
            if let rtt = row.rttNs { #expect(rtt > 0 && rtt < 1_000_000_000) }
            answeredByTTL[row.ttl, default: 0] += row.receivedNs == nil ? 0 : 1
            loggedByTTL[row.ttl, default: 0] += line.answered_by == nil ? 0 : 1
        }
        #expect(answeredByTTL == loggedByTTL, "\(label): per-hop answers")
    }

    /// The first router changes 3 s in: after three rounds from its new
    /// address the hop's history has both, the new one since the first round
    /// it answered from there.
    @Test func aRouteChangeMidRunIsInTheHopsHistory() throws {
        let namespace = try TestNamespace()
        defer { namespace.destroy() }
        let responder = try namespace.startResponder([
            .init(address: "198.18.0.70", behaviour: .clean, path: PathConfig(
                hops: [HopConfig(address: "198.18.0.121"), HopConfig(address: "198.18.0.122")],
                change_after_s: 3, hops_after: [HopConfig(address: "198.18.0.131"), HopConfig(address: "198.18.0.122")])),
        ])
        let db = namespace.directory.appendingPathComponent("change.db").path
        let recorder = try namespace.start([pingemBinary, "record", "moving=198.18.0.70", "--db", db, "--interval", "200ms",
                                            "--path-interval", "1s", "--flush", "500ms"], label: "record-change")
        usleep(9_000_000)
        recorder.signal(SIGINT)
        try #require(recorder.wait(timeout: 30) == 0, "pingem record: \(recorder.stderr)")
        _ = try responder.stop()
        let database = try Database(path: db, mode: .readOnly)
        let rows = try database.pathProbes(targets: nil, from: 0, to: .max)
        expectRowsAsLogged(rows, try responder.readPathLog(), "moving")
        let hop1 = try database.pathHops(targets: nil).filter { $0.ttl == 1 }
        #expect(hop1.map(\.address) == ["198.18.0.121", "198.18.0.131"])
        let firstMoved = rows.filter { $0.ttl == 1 && $0.from == "198.18.0.131" }.map(\.roundNs).min()
        #expect(hop1.last?.sinceNs == firstMoved)
        #expect(try database.pathHops(targets: nil).filter { $0.ttl == 2 }.map(\.address) == ["198.18.0.122"])
    }

    /// Two equal-cost routers at hop 1 that hash flows over identifier and
    /// checksum: each target's rounds keep both constant (Paris traceroute),
    /// so every round of a target meets the same router, and the two
    /// targets (two checksums) meet different ones.
    @Test func equalCostRoutersSeeOneFlowPerTarget() throws {
        let namespace = try TestNamespace()
        defer { namespace.destroy() }
        let hops = [HopConfig(address: "198.18.0.140", ecmp: ["198.18.0.141", "198.18.0.142"]), HopConfig(address: "198.18.0.143")]
        let responder = try namespace.startResponder([
            .init(address: "198.18.0.80", behaviour: .clean, path: PathConfig(hops: hops)),
            .init(address: "198.18.0.81", behaviour: .clean, path: PathConfig(hops: hops)),
        ])
        let db = namespace.directory.appendingPathComponent("ecmp.db").path
        let recorder = try namespace.start([pingemBinary, "record", "a=198.18.0.80", "b=198.18.0.81", "--db", db,
                                            "--interval", "200ms", "--path-interval", "1s", "--flush", "500ms"], label: "record-ecmp")
        usleep(6_000_000)
        recorder.signal(SIGINT)
        try #require(recorder.wait(timeout: 30) == 0, "pingem record: \(recorder.stderr)")
        _ = try responder.stop()
        let database = try Database(path: db, mode: .readOnly)
        let rows = try database.pathProbes(targets: nil, from: 0, to: .max)
        let lines = try responder.readPathLog()
        var routers: [String] = []
        for target in try database.targets() {
            let mine = rows.filter { $0.targetID == target.id }
            let theirs = lines.filter { $0.destination == target.host }
            #expect(Set(theirs.map(\.checksum)).count == 1, "\(target.name): one checksum")
            expectRowsAsLogged(mine, theirs, target.name)
            let hop1 = Set(mine.filter { $0.ttl == 1 }.compactMap(\.from))
            #expect(hop1.count == 1 && mine.filter { $0.ttl == 1 }.count >= 4, "\(target.name): hop 1 answered from \(hop1)")
            routers += hop1
        }
        #expect(Set(routers) == ["198.18.0.141", "198.18.0.142"], "the two flows take the two routers")
    }

    @Test func pathIntervalZeroSendsNoPathProbe() throws {
        let namespace = try TestNamespace()
        defer { namespace.destroy() }
        let responder = try namespace.startResponder(Self.destinations)
        let db = namespace.directory.appendingPathComponent("off.db").path
        let recorder = try namespace.start([pingemBinary, "record", "far4=198.18.0.60", "--db", db, "--interval", "200ms",
                                            "--path-interval", "0"], label: "record-off")
        usleep(3_000_000)
        recorder.signal(SIGINT)
        try #require(recorder.wait(timeout: 30) == 0, "pingem record: \(recorder.stderr)")
        let log = try responder.stop()
        #expect(try responder.readPathLog().isEmpty)
        #expect(log.count >= 10)
        #expect(try Database(path: db, mode: .readOnly).pathProbes(targets: nil, from: 0, to: .max).isEmpty)
    }

    /// An outage that begins at hop 3, right behind a router that rate-limits
    /// its answers (mtr would show it losing half): every stored round the
    /// responder dropped is lost from hop 3, and report blames hop 3, by its
    /// address, for the outage and the window, on both socket kinds; at the
    /// same time, over IPv6, one that begins at hop 2 (a router quoting 8
    /// bytes), and a gateway outage.
    @Test(arguments: ["raw", "datagram"]) func anOutageBeyondTheGatewayIsBlamedOnItsHop(kind: String) throws {
        let namespace = try TestNamespace(pingSockets: kind == "datagram")
        defer { namespace.destroy() }
        let responder = try namespace.startResponder([
            .init(address: "198.18.0.70", behaviour: .outage, outage_start_s: 3, outage_end_s: 11, path: PathConfig(hops: [
                HopConfig(address: "198.18.0.121"), HopConfig(address: "198.18.0.122", answer_every: 2),
                HopConfig(address: "198.18.0.123"), HopConfig(address: "198.18.0.124"),
            ], loss_from_ttl: 3, loss_during_outage: true)),
            .init(address: "fd00:18::70", behaviour: .outage, outage_start_s: 3, outage_end_s: 11, path: PathConfig(hops: [
                HopConfig(address: "fd00:18::121"), HopConfig(address: "fd00:18::122", quote_bytes: 8),
            ], loss_from_ttl: 2, loss_during_outage: true)),
            .init(address: "198.18.0.72", behaviour: .outage, outage_start_s: 3, outage_end_s: 11, path: PathConfig(hops: [
                HopConfig(address: "198.18.0.131"), HopConfig(address: "198.18.0.132"),
            ], loss_from_ttl: 1, loss_during_outage: true)),
        ])
        let (command, db) = try recorderCommand(kind, in: namespace, database: "where.db")
        let recorder = try namespace.start(command + ["record", "far=198.18.0.70", "far6=fd00:18::70", "gw=198.18.0.72", "--db", db, "--interval", "200ms",
                                                      "--path-interval", "5s", "--flush", "500ms"], label: "where-\(kind)")
        usleep(14_000_000)
        recorder.signal(SIGINT)
        try #require(recorder.wait(timeout: 30) == 0, "pingem record: \(recorder.stderr)")
        _ = try responder.stop()
        let pathLog = try responder.readPathLog()

        // The responder's word: the rounds whose probe to the target (TTL 5,
        // the distance) it dropped at hop 3.
        let farLog = pathLog.filter { $0.destination == "198.18.0.70" }
        let dropped = Set(farLog.filter { $0.action == "forward-loss" && $0.ttl >= 5 }.map(\.round))
        #expect(farLog.filter { $0.action == "forward-loss" }.allSatisfy { $0.hop == 3 && $0.ttl >= 3 })
        // During the loss (seen 2 s after its first lost probe) rounds run
        // every --interval (but wait 0.5 s for their answers), not every 5 s:
        // the 8 s outage meets far more than its two 5 s rounds (wide margin).
        try #require(dropped.count >= 5, "\(dropped.count) rounds met the outage")
        let database = try Database(path: db, mode: .readOnly)
        let farID = try #require(try database.targets().first { $0.name == "far" }?.id)
        let rows = try database.pathProbes(targets: [farID], from: 0, to: .max)
        let byRound = Dictionary(grouping: rows, by: \.roundNs).values
        let lostRounds = byRound.filter { $0.contains { $0.toTarget && $0.receivedNs == nil } }
        #expect(lostRounds.count == dropped.count, "stored rounds that lost the target, against the responder's")
        // Lost from hop 3 on (a round the outage's edge cut in two may not be), the gateway answering.
        #expect(lostRounds.filter { $0.filter { $0.ttl >= 3 }.allSatisfy { $0.receivedNs == nil } }.count >= lostRounds.count - 2)
        #expect(lostRounds.allSatisfy { $0.contains { $0.ttl == 1 && $0.receivedNs != nil } })

        let report = runCommand([pingemBinary, "report", "--db", db, "--format", "json", "--last", "1h"])
        try #require(report.status == 0, "\(report.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])
        let targets = try #require(json["targets"] as? [[String: Any]])
        // JSON numbers come back as NSNumber: compare the fields as text.
        let fields = { (w: Any?) in (w as? [String: Any])?.mapValues { "\($0)" } }
        let expected = ["far": ["segment": "path", "ttl": "3", "address": "198.18.0.123"],
                        "far6": ["segment": "path", "ttl": "2", "address": "fd00:18::122"],
                        "gw": ["segment": "gateway", "ttl": "1", "address": "198.18.0.131"]]
        try #require(targets.count == 3)
        for target in targets {
            let name = target["target"] as? String ?? "?"
            let outages = target["outages"] as? [[String: Any]] ?? []
            try #require(outages.count == 1, "\(name): outages \(outages)")
            #expect(fields(outages[0]["where"]) == expected[name], "\(name)")
            #expect(fields((target["summary"] as? [String: Any])?["where"]) == expected[name], "\(name)")
        }
        // The rate-limited hop in front of far's hop 3 loses about half: it is
        // not where the loss begins.
        let target = try #require(targets.first { $0["target"] as? String == "far" })
        let path = try #require(target["path"] as? [[String: Any]])
        #expect(path.map { $0["ttl"] as? Int } == [1, 2, 3, 4, 5])
        #expect(path[1]["address"] as? String == "198.18.0.122" && (path[1]["loss_pct"] as? Double ?? 0) > 30)
        #expect((path[2]["forward_loss_pct"] as? Double ?? 0) > 0)

        let table = runCommand([pingemBinary, "report", "--db", db, "--last", "1h", "--path"])
        #expect(table.stdout.contains("loss begins at hop 3, 198.18.0.123, and continues to the target: beyond your gateway"),
                "\(table.stdout)")
        #expect(table.stdout.contains("where: hop 3, 198.18.0.123"))
    }

    /// pingem as root on raw sockets, or as nobody on datagram sockets (then
    /// from a copy and a database folder nobody may use), and its database.
    func recorderCommand(_ kind: String, in namespace: TestNamespace, database: String) throws -> ([String], String) {
        guard kind == "datagram" else { return ([pingemBinary], namespace.directory.appendingPathComponent(database).path) }
        let (binary, work) = try nobodysPingem(in: namespace)
        return (["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", binary],
                work.appendingPathComponent(database).path)
    }
}
