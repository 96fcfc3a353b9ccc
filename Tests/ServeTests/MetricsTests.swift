// /metrics: exact values for a hand-built history written through Store,
// read back by parsing the text format; scrape by scrape equals one scrape
// (each probe counted once); the listen address rules.
import Foundation
@testable import Serve
import Store
import Testing
import TestSupport

let second: Int64 = 1_000_000_000
let ms: Int64 = 1_000_000
let start: Int64 = 1_795_000_000 * second

/// Ten probes of one target, 1 s apart, each a different case; the session
/// stops 0.5 s after the last, so that one is unknown.
func writeCases(_ path: String) throws {
    let db = try Database(path: path, mode: .readWrite)
    let t = try db.target(name: "router", host: "gw.example")
    let session = try db.beginTestSession(runID: 7, intervalNs: second, startedNs: start, targets: [t.id])
    var b = WriteBatch()
    b.addresses = [AddressRecord(targetID: t.id, sinceNs: start, address: "198.18.0.1")]
    func at(_ k: Int64) -> Int64 { start + k * second }
    b.probes = [
        ProbeRecord(sentNs: at(0), targetID: t.id, rttNs: 40_000),           // 40 µs: first bucket
        ProbeRecord(sentNs: at(1), targetID: t.id, rttNs: 300_000),          // 0.3 ms: le 0.0004
        ProbeRecord(sentNs: at(2), targetID: t.id),                          // lost
        ProbeRecord(sentNs: at(3), targetID: t.id, sendError: 101),          // send error
        ProbeRecord(sentNs: at(4), targetID: t.id),                          // late reply below
        ProbeRecord(sentNs: at(5), targetID: t.id, rttNs: 10 * ms),          // + a duplicate
        ProbeRecord(sentNs: at(6), targetID: t.id),                          // ICMP error
        ProbeRecord(sentNs: at(7), targetID: t.id),                          // reply row only
        ProbeRecord(sentNs: at(8), targetID: t.id, rttNs: second),           // 1 s: le 1.6384
        ProbeRecord(sentNs: at(9), targetID: t.id),                          // recorder stopped
    ]
    b.replies = [
        ReplyRecord(sentNs: at(4), targetID: t.id, rttNs: 3 * second),
        ReplyRecord(sentNs: at(5), targetID: t.id, rttNs: 11 * ms),
        ReplyRecord(sentNs: at(7), targetID: t.id, rttNs: 20 * ms),
    ]
    b.icmpErrors = [ICMPErrorRecord(sentNs: at(6), targetID: t.id, rttNs: 2 * ms, family: 4, type: 3, code: 1, source: "198.18.0.254")]
    b.heartbeatNs = at(9) + 500 * ms
    try db.write(b, session: session)
    try db.endSession(session, stoppedNs: at(9) + 500 * ms)
}

/// The text format parsed: "name{label="v",...}" -> value; label order as written.
func parseExposition(_ text: String) throws -> [String: Double] {
    var samples: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let space = try #require(line.lastIndex(of: " "))
        let value = try #require(Double(line[line.index(after: space)...]), "\(line)")
        #expect(samples[String(line[..<space])] == nil, "sample written twice: \(line)")
        samples[String(line[..<space])] = value
    }
    return samples
}

@Suite struct MetricsTests {
    /// Probes and summaries bucket by integer ns; the bounds written are
    /// seconds: both put a bound's own RTT in its bucket and the next ns above.
    @Test func bucketsByNanosecondsMatchTheBoundsAsWritten() {
        for (k, bound) in prometheusBoundsNs.enumerated() {
            #expect(responseBucket(bound) == k)
            #expect(responseBucket(bound + 1) == k + 1)
            #expect(Double(bound) / 1e9 <= responseBucketsSeconds[k] && Double(bound + 1) / 1e9 > responseBucketsSeconds[k])
        }
        #expect(number(responseBucketsSeconds[0]) == "5e-05" && number(responseBucketsSeconds[19]) == "26.2144")
    }

    let labels = #"host="gw.example",ip="198.18.0.1",source="",tos="0""#

    @Test func everyCaseCountsAsSmokepingProberWould() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.db").path
        try writeCases(path)
        var state = MetricsState()
        let now = start + 3600 * second
        try state.advance(db: try Database(path: path, mode: .readOnly), now: now)
        let text = state.render(now: now)
        let m = try parseExposition(text)
        #expect(m["smokeping_requests_total{\(labels)}"] == 9)  // all but the unknown one
        #expect(m["smokeping_response_duration_seconds_count{\(labels)}"] == 5)
        let sum = try #require(m["smokeping_response_duration_seconds_sum{\(labels)}"])
        #expect(abs(sum - (0.00004 + 0.0003 + 0.010 + 0.020 + 1.0)) < 1e-12)
        func bucket(_ le: String) -> Double? { m["smokeping_response_duration_seconds_bucket{\(labels),le=\"\(le)\"}"] }
        #expect(bucket("5e-05") == 1)
        #expect(bucket("0.0002") == 1)
        #expect(bucket("0.0004") == 2)
        #expect(bucket("0.0128") == 3)
        #expect(bucket("0.0256") == 4)
        #expect(bucket("0.8192") == 4)
        #expect(bucket("1.6384") == 5)
        #expect(bucket("26.2144") == 5)
        #expect(bucket("+Inf") == 5)
        // Exactly smokeping_prober's 20 bounds plus +Inf.
        #expect(m.keys.filter { $0.hasPrefix("smokeping_response_duration_seconds_bucket") }.count == 21)
        #expect(m["smokeping_response_duplicates_total{\(labels)}"] == 1)
        #expect(m["smokeping_send_errors_total{\(labels)}"] == 1)
        #expect(m["pingem_late_replies_total{\(labels)}"] == 1)
        #expect(m["pingem_unknown_probes_total{\(labels)}"] == 1)
        #expect(m["pingem_icmp_errors_total{\(labels),family=\"4\",type=\"3\"}"] == 1)
        #expect(m["pingem_recorder_up"] == 0)  // stopped cleanly
        #expect(m["pingem_session_start_time_seconds"] == Double(start / second))
        #expect(text.contains("# TYPE smokeping_response_duration_seconds histogram\n"))
    }

    @Test func scrapeByScrapeEqualsOneScrape() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.db").path
        try writeCases(path)
        let db = try Database(path: path, mode: .readOnly)
        var stepwise = MetricsState()
        // A scrape every 300 ms from before the first probe to well after the
        // last: cutoffs fall between and on probes.
        var now = start
        while now < start + 30 * second {
            try stepwise.advance(db: db, now: now)
            now += 300 * ms
        }
        var once = MetricsState()
        try once.advance(db: db, now: now)
        #expect(stepwise.totals == once.totals)
        #expect(once.totals.values.map(\.requests).reduce(0, +) == 9)
        // A restarted serve rebuilds the same totals from the database.
        var restarted = MetricsState()
        try restarted.advance(db: try Database(path: path, mode: .readOnly), now: now)
        #expect(restarted.totals == stepwise.totals)
    }

    @Test func aProbeWaitsForItsTimeoutAndTheSettleTime() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.db").path
        try writeCases(path)
        var state = MetricsState(timeoutNs: 2 * second, settleNs: 5 * second)
        // Probes 0..2 have sent_ns < now - 7 s.
        try state.advance(db: try Database(path: path, mode: .readOnly), now: start + 9 * second + 1)
        #expect(state.totals.values.map(\.requests).reduce(0, +) == 3)
    }
}

extension MetricsTests {
    /// A probe is judged with its own target's sessions (session_target), as
    /// a report judges it: a short session of another target that started
    /// later does not make it unknown.
    @Test func aProbeIsJudgedWithTheSessionsOfItsTarget() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.db").path
        let db = try Database(path: path, mode: .readWrite)
        let a = try db.target(name: "a", host: "a.example"), b = try db.target(name: "b", host: "b.example")
        func begin(_ target: TargetRecord, at startedNs: Int64) throws -> Int64 {
            try db.beginSession(
                NewSession(runID: UInt64(startedNs), pid: 1, hostname: "test", version: "test", socketKind: "raw",
                           intervalNs: second, payloadBytes: 56, startedNs: startedNs),
                targets: [SessionTargetRecord(sessionID: 0, targetID: target.id, offsetNs: 0)])
        }
        let ofA = try begin(a, at: start)
        let ofB = try begin(b, at: start + 50 * second)
        var batch = WriteBatch()
        batch.probes = [ProbeRecord(sentNs: start + 60 * second, targetID: a.id)]  // no reply
        batch.heartbeatNs = start + 100 * second
        try db.write(batch, session: ofA)
        try db.endSession(ofA, stoppedNs: start + 100 * second)
        try db.endSession(ofB, stoppedNs: start + 51 * second)
        var state = MetricsState()
        try state.advance(db: db, now: start + 3600 * second)
        let totals = try #require(state.totals.values.first)
        #expect(state.totals.count == 1)
        #expect(totals.requests == 1 && totals.unknown == 0)
    }
}

@Suite struct ListenTests {
    @Test func loopbackIsQuietAndTheDefault() throws {
        #expect(try parseListen(nil) == ListenAddress(host: "127.0.0.1", port: 8000, isExposed: false))
        #expect(try parseListen("127.0.0.1:9000").isExposed == false)
        #expect(try parseListen("[::1]:9000") == ListenAddress(host: "::1", port: 9000, isExposed: false))
        #expect(try parseListen("localhost:9000").host == "127.0.0.1")
        #expect(try parseListen(nil).warning == nil)
    }

    @Test func anAddressNamedExplicitlyIsAllowedWithAWarning() throws {
        let address = try parseListen("192.168.1.10:8000")
        #expect(address.isExposed)
        #expect(address.warning?.contains("no authentication") == true)
        #expect(try parseListen("[2001:db8::1]:8000").isExposed)
    }

    @Test func wildcardsAndNamesAreRefused() {
        for text in ["0.0.0.0:8000", "[::]:8000", ":8000", "*:8000", "example.com:8000", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:http"] {
            #expect(throws: ListenError.self, "\(text)") { try parseListen(text) }
        }
    }
}

extension MetricsTests {
    /// smokeping_prober's source and tos labels come from session_target:
    /// the --source address (else the --interface name), the TOS byte.
    @Test func sourceAndTOSLabelsComeFromTheSessionsTarget() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = try Database(path: dir.appendingPathComponent("m.db").path, mode: .readWrite)
        let a = try db.target(name: "isp1", host: "192.0.2.1"), b = try db.target(name: "isp2", host: "192.0.2.1")
        let session = try db.beginSession(
            NewSession(runID: 7, pid: 1, hostname: "test", version: "test", socketKind: "raw",
                       intervalNs: second, payloadBytes: 56, startedNs: start),
            targets: [SessionTargetRecord(sessionID: 0, targetID: a.id, offsetNs: 0, source: "198.51.100.7", tos: 184),
                      SessionTargetRecord(sessionID: 0, targetID: b.id, offsetNs: 0, interface: "eth1")])
        var batch = WriteBatch()
        batch.probes = [ProbeRecord(sentNs: start + second, targetID: a.id, rttNs: 1_000_000),
                        ProbeRecord(sentNs: start + second, targetID: b.id, rttNs: 2_000_000)]
        batch.addresses = [AddressRecord(targetID: a.id, sinceNs: start, address: "192.0.2.1"),
                           AddressRecord(targetID: b.id, sinceNs: start, address: "192.0.2.1")]
        batch.heartbeatNs = start + 10 * second
        try db.write(batch, session: session)
        var state = MetricsState()
        try state.advance(db: db, now: start + 60 * second)
        let text = state.render(now: start + 60 * second)
        #expect(text.contains("smokeping_requests_total{host=\"192.0.2.1\",ip=\"192.0.2.1\",source=\"198.51.100.7\",tos=\"184\"} 1"), "\(text)")
        #expect(text.contains("smokeping_requests_total{host=\"192.0.2.1\",ip=\"192.0.2.1\",source=\"eth1\",tos=\"0\"} 1"), "\(text)")
    }
}
