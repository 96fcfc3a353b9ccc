// `pingem report --db home.db --db office.db`: two databases written by the
// real Store, reported side by side by the binary in every format; the same
// target name in both is two rows; --fail-if names the vantage; a database
// that cannot be read is named; one --db keeps the old output exactly.
import Foundation
import Store
import Testing
import TestSupport

/// One session from `start` with, per target, one probe a second: an RTT in
/// milliseconds, or nil for a probe never answered.
/// With `pathLossFromHop`, a path round with each probe: hops 1 and 2 and
/// the target (TTL 3), everything from that hop on unanswered where the
/// probe was.
private func writeVantage(_ path: String, start: Int64, _ targets: [(name: String, host: String, rtts: [Int64?])],
                          pathLossFromHop: Int? = nil) throws {
    let db = try Database(path: path, mode: .readWrite)
    let records = try targets.map { try db.target(name: $0.name, host: $0.host) }
    let session = try db.beginTestSession(intervalNs: second, startedNs: start, targets: records.map(\.id))
    var batch = WriteBatch()
    for (record, target) in zip(records, targets) {
        batch.addresses.append(AddressRecord(targetID: record.id, sinceNs: start, address: target.host))
        for (k, rtt) in target.rtts.enumerated() {
            let sent = start + Int64(k) * second
            batch.probes.append(ProbeRecord(sentNs: sent, targetID: record.id, rttNs: rtt.map { $0 * 1_000_000 }))
            guard let from = pathLossFromHop else { continue }
            for ttl in 1...3 {
                let answered = rtt != nil || ttl < from
                batch.pathProbes.append(PathProbeRecord(
                    targetID: record.id, roundNs: sent + 1000, ttl: ttl, toTarget: ttl == 3, sentNs: sent + 1000 + Int64(ttl),
                    receivedNs: answered ? sent + 2_000_000 : nil, from: answered ? (ttl == 3 ? target.host : "198.18.9.\(ttl)") : nil,
                    answer: answered ? (ttl == 3 ? .echoReply : .timeExceeded) : nil,
                    icmpType: answered ? (ttl == 3 ? 0 : 11) : nil, icmpCode: answered ? 0 : nil))
            }
        }
    }
    batch.probes.sort { ($0.sentNs, $0.targetID) < ($1.sentNs, $1.targetID) }
    batch.heartbeatNs = start + 10 * second
    try db.write(batch, session: session)
    try db.endSession(session, stoppedNs: start + 10 * second)
}

@Suite struct VantageCLITests {
    static let start: Int64 = 1_764_000_000 * second  // 2025-11-24T16:00:00Z
    static let window = ["--since", "2025-11-24T16:00:00Z", "--until", "2025-11-24T16:00:10Z"]

    /// home.db: router answers in 10 ms, dns loses 2 of 10. office.db: the
    /// same router name, 30 ms and 3 lost.
    func databases() throws -> (dir: URL, home: String, office: String) {
        let dir = try temporaryDirectory()
        let home = dir.appendingPathComponent("home.db").path, office = dir.appendingPathComponent("office.db").path
        try writeVantage(home, start: Self.start, [
            ("router", "198.18.0.1", Array(repeating: 10, count: 10)),
            ("dns", "198.18.0.53", [5, 5, nil, nil, 5, 5, 5, 5, 5, 5]),
        ])
        try writeVantage(office, start: Self.start, [
            ("router", "198.18.0.1", [30, nil, 30, nil, 30, nil, 30, 30, 30, 30]),
        ], pathLossFromHop: 2)
        return (dir, home, office)
    }

    @Test func tableHasAVantageColumnAndBlocksNameTheVantage() throws {
        let (dir, home, office) = try databases()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try pingem(["report", "--db", home, "--db", office] + Self.window, environment: ["TZ": "UTC"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == """
            Window 2025-11-24 16:00:00 → 2025-11-24 16:00:10 UTC (UTC+00:00), timeout 2 s

            VANTAGE  TARGET  ADDRESS      SENT  LOSS%  LOST  LATE  DUP  ERR  UNK  COVER  MIN ms  P50 ms  P90 ms  P99 ms  MAX ms  JITTER ms
            home     router  198.18.0.1     10   0.00     0     0    0    0    0   100%    10.0    10.0    10.0    10.0    10.0       0.00
            home     dns     198.18.0.53    10  20.00     2     0    0    0    0   100%    5.00    5.00    5.00    5.00    5.00       0.00
            office   router  198.18.0.1     10  30.00     3     0    0    0    0   100%    30.0    30.0    30.0    30.0    30.0       0.00

            """, "\(r.stdout)")
    }

    @Test func csvAndJSONCarryTheVantage() throws {
        let (dir, home, office) = try databases()
        defer { try? FileManager.default.removeItem(at: dir) }
        let csv = try pingem(["report", "--db", home, "--db", "work=\(office)", "--format", "csv"] + Self.window)
        #expect(csv.status == 0, "\(csv.stderr)")
        let rows = csv.stdout.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(rows[0].prefix(3) == ["vantage", "target", "host"])
        #expect(rows.dropFirst().map { "\($0[0]) \($0[1]) \($0[5]) \($0[7])" }
                == ["home router 10 0", "home dns 10 2", "work router 10 3"])  // vantage target sent lost

        let json = try pingem(["report", "--db", home, "--db", "work=\(office)", "--format", "json", "--epoch", "5s"] + Self.window)
        #expect(json.status == 0, "\(json.stderr)")
        #expect(json.stdout.contains("""
                {
                  "vantage": "work",
                  "target": "router",
                  "host": "198.18.0.1",
            """), "\(json.stdout)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let targets = try #require(object["targets"] as? [[String: Any]])
        #expect(targets.map { "\($0["vantage"] ?? "-")/\($0["target"] ?? "-")" } == ["home/router", "home/dns", "work/router"])
        let lost = targets.map { (($0["summary"] as? [String: Any])?["lost"] as? Int) ?? -1 }
        #expect(lost == [0, 2, 3])
        let epochs = targets.map { ($0["epochs"] as? [[String: Any]] ?? []).map { $0["lost"] as? Int ?? -1 } }
        #expect(epochs == [[0, 0], [2, 0], [2, 1]])
    }

    @Test func eachVantageJudgesWhereFromItsOwnPath() throws {
        let (dir, home, office) = try databases()
        defer { try? FileManager.default.removeItem(at: dir) }
        let json = try pingem(["report", "--db", home, "--db", "work=\(office)", "--format", "json"] + Self.window)
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let targets = try #require(object["targets"] as? [[String: Any]])
        let wheres = targets.map { target in
            ((target["summary"] as? [String: Any])?["where"] as? [String: Any])?.mapValues { "\($0)" } ?? [:]
        }
        // home recorded no path rounds: its loss is unknown; work's began at hop 2.
        #expect(wheres == [[:], ["segment": "unknown", "ttl": "<null>", "address": "<null>"],
                           ["segment": "path", "ttl": "2", "address": "198.18.9.2"]], "\(wheres)")
        #expect(targets.map { ($0["path"] as? [Any])?.count ?? -1 } == [0, 0, 3])
    }

    @Test func oneDatabaseKeepsTheOldShape() throws {
        let (dir, home, _) = try databases()
        defer { try? FileManager.default.removeItem(at: dir) }
        let table = try pingem(["report", "--db", home] + Self.window, environment: ["TZ": "UTC"])
        #expect(table.stdout.contains("\nTARGET  ADDRESS      SENT"), "\(table.stdout)")
        #expect(!table.stdout.contains("VANTAGE"))
        let csv = try pingem(["report", "--db", home, "--format", "csv"] + Self.window)
        #expect(csv.stdout.hasPrefix("target,host,start,"))
        let json = try pingem(["report", "--db", home, "--format", "json"] + Self.window)
        #expect(!json.stdout.contains("vantage"))
        // A single NAME=PATH is that path, still without a vantage.
        let named = try pingem(["report", "--db", "here=\(home)", "--format", "json"] + Self.window)
        #expect(named.status == 0, "\(named.stderr)")
        #expect(named.stdout == json.stdout)
    }

    @Test func failIfNamesTheVantageAndTargetsMayBeInOneDatabaseOnly() throws {
        let (dir, home, office) = try databases()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try pingem(["report", "--db", home, "--db", office, "--fail-if", "loss_pct>10", "--format", "csv"] + Self.window)
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stderr == """
            pingem: dns at home: loss_pct is 20%, crossing loss_pct>10
            pingem: router at office: loss_pct is 30%, crossing loss_pct>10

            """)
        // dns was recorded at home only: one row, no error for office.
        let dns = try pingem(["report", "--db", home, "--db", office, "--target", "dns", "--format", "csv"] + Self.window)
        #expect(dns.status == 0, "\(dns.stderr)")
        #expect(dns.stdout.split(separator: "\n").count == 2)
        let unknown = try pingem(["report", "--db", home, "--db", office, "--target", "ntp"] + Self.window)
        #expect(unknown.status == 64)
        #expect(unknown.stderr == "pingem: Unknown target \"ntp\": no database recorded it (home: router, dns; office: router).\n")
    }

    @Test func aDatabaseThatCannotBeReadIsNamed() throws {
        let (dir, home, office) = try databases()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("lab.db").path
        let r = try pingem(["report", "--db", home, "--db", missing] + Self.window)
        #expect(r.status == 1)
        #expect(r.stderr == "pingem: vantage lab: \(missing) does not exist; run pingem record first or give the right path with --db.\n")
        #expect(r.stdout.isEmpty)
        // Two files called pingem.db need names.
        let other = dir.appendingPathComponent("b").path
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: office, toPath: other + "/home.db")
        let clash = try pingem(["report", "--db", home, "--db", other + "/home.db"] + Self.window)
        #expect(clash.status == 64)
        #expect(clash.stderr.contains("both called \"home\""), "\(clash.stderr)")
        let named = try pingem(["report", "--db", home, "--db", "b=\(other)/home.db", "--format", "csv"] + Self.window)
        #expect(named.status == 0, "\(named.stderr)")
        #expect(named.stdout.contains("\nb,router,"))
    }
}
