// The real Prometheus server (Debian package prometheus) on loopback with the
// shipped contrib/prometheus.yml and rules, scraping a running pingem serve
// while rows are written as a recorder would: its HTTP API gives the loss
// ratio of the shipped recording rule.
import Foundation
import Store
import Testing
import TestSupport

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

@Suite(.serialized) struct PrometheusTests {
    @Test func prometheusComputesTheLossRatioOfTheShippedRule() throws {
        let binary = try requireExecutable(["/usr/bin/prometheus"], "prometheus (script/test installs it: apt-get install -y prometheus)")
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("p.db").path

        // A recorder's writes: one probe every 50 ms sent now, every 4th lost.
        let writer = try Database(path: db, mode: .readWrite)
        let target = try writer.target(name: "router", host: "198.18.0.1")
        func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1e9) }
        let session = try writer.beginTestSession(runID: 9, intervalNs: 50 * ms, startedNs: now(), targets: [target.id])
        var first = WriteBatch()
        first.addresses = [AddressRecord(targetID: target.id, sinceNs: now(), address: "198.18.0.1")]
        first.heartbeatNs = now()
        try writer.write(first, session: session)
        var sequence = 0
        func writeProbes() throws {
            var batch = WriteBatch()
            for k in 0..<4 {
                sequence += 1
                let rtt: Int64? = sequence % 4 == 0 ? nil : 5 * ms
                batch.probes.append(ProbeRecord(sentNs: now() + Int64(k), targetID: target.id, rttNs: rtt))
            }
            batch.heartbeatNs = now()
            try writer.write(batch, session: session)
        }

        let serve = try RunningServe(db: db)
        defer { serve.stop() }

        // The shipped config, scraping this serve every second.
        var config = try String(contentsOf: repositoryRoot.appendingPathComponent("contrib/prometheus.yml"), encoding: .utf8)
        config = config.replacingOccurrences(of: "15s", with: "1s")
            .replacingOccurrences(of: "- 127.0.0.1:8000", with: "- 127.0.0.1:\(serve.port)")
        try config.write(to: dir.appendingPathComponent("prometheus.yml"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent("contrib/pingem-rules.yml"),
                                         to: dir.appendingPathComponent("pingem-rules.yml"))
        let port = try freePort()
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: binary)
        prometheus.arguments = ["--config.file=" + dir.appendingPathComponent("prometheus.yml").path,
                                "--storage.tsdb.path=" + dir.appendingPathComponent("tsdb").path,
                                "--web.listen-address=127.0.0.1:\(port)"]
        let log = Pipe()
        prometheus.standardError = log
        prometheus.standardOutput = FileHandle.nullDevice
        try prometheus.run()
        let prometheusLog = Collected(log.fileHandleForReading)
        defer { kill(prometheus.processIdentifier, SIGKILL); prometheus.waitUntilExit() }

        // Keep writing until the rule has a value (every probe counted needs
        // its timeout and settle time behind it, and rate() two scrapes).
        let query = "http://127.0.0.1:\(port)/api/v1/query?query=target:smokeping_loss_ratio:rate5m"
        var ratio: Double?
        let deadline = Date().addingTimeInterval(90)
        while ratio == nil && Date() < deadline {
            try writeProbes()
            usleep(200_000)
            guard let (status, body) = try? get(query), status == 200,
                  let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                  let data = json["data"] as? [String: Any],
                  let result = (data["result"] as? [[String: Any]])?.first,
                  let metric = result["metric"] as? [String: String], metric["host"] == "198.18.0.1",
                  let value = (result["value"] as? [Any])?.last as? String,
                  let number = Double(value), number.isFinite else { continue }
            ratio = number
        }
        let found = try #require(ratio, "no loss ratio from Prometheus: \(prometheusLog.value.suffix(2000))")
        // One probe in four is lost; the rule's rate() window holds whole
        // scrapes, so the ratio is near 1/4 but not exactly.
        #expect(found > 0.15 && found < 0.35, "\(found)")
    }
}
