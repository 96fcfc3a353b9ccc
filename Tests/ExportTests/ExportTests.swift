// pingem export html: the page's figures are makeReport's, user strings stay
// text, the CLI writes atomically, and a real Chromium draws the page without
// a JavaScript error.
import Foundation
@testable import Reports
import Store
import Testing
import TestSupport

let second: Int64 = 1_000_000_000
let hostileLabel = "</script><img src=x onerror=alert(1)>"
/// Start of every test history: a whole hour, so epochs of all widths align.
let historyStart: Int64 = 1_795_000_000 * second - (1_795_000_000 * second) % (3600 * second)

/// Two targets (one with the hostile label), two recorder sessions 10 minutes
/// apart, 40 minutes of 1 s probes with scattered loss, an outage, late
/// replies, ICMP errors and duplicates.
func makeHistory(at path: String) throws {
    let db = try Database(path: path, mode: .readWrite)
    let router = try db.target(name: "router", host: "198.18.0.1")
    let hostile = try db.target(name: hostileLabel + "\u{2028}&", host: "198.18.0.2")
    var seed: UInt64 = 42
    func random() -> Double {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        return Double(seed >> 11) / Double(1 << 53)
    }
    for (run, (from, to)) in [(0, 1200), (1800, 2400)].enumerated() {
        let started = historyStart + Int64(from) * second
        let session = try db.beginTestSession(runID: UInt64(run + 1), intervalNs: second, startedNs: started,
                                              targets: [router.id, hostile.id], offsetStepNs: 500_000_000)
        var batch = WriteBatch()
        batch.addresses = [AddressRecord(targetID: router.id, sinceNs: started, address: "198.18.0.1"),
                           AddressRecord(targetID: hostile.id, sinceNs: started, address: "198.18.0.2")]
        for k in from..<to {
            for (n, target) in [router, hostile].enumerated() {
                let sent = historyStart + Int64(k) * second + Int64(n) * 500_000_000
                let base = n == 0 ? 12.0 : 30.0
                var rtt: Int64? = Int64((base + random() * 6 + (random() < 0.02 ? 40 : 0)) * 1e6)
                if random() < 0.01 { rtt = nil }                          // silent loss
                if n == 0 && (600..<608).contains(k) { rtt = nil }        // an outage
                if n == 1 && k % 301 == 7 { rtt = 2_500_000_000 }         // late
                if n == 1 && k % 407 == 11 {                              // ICMP error
                    rtt = nil
                    batch.icmpErrors.append(ICMPErrorRecord(sentNs: sent, targetID: target.id, rttNs: 3_000_000,
                                                            family: 4, type: 3, code: 1, source: "198.18.0.254"))
                }
                if let r = rtt, k % 97 == 0 { batch.replies.append(ReplyRecord(sentNs: sent, targetID: target.id, rttNs: r + 1_000_000)) }
                batch.probes.append(ProbeRecord(sentNs: sent, targetID: target.id, rttNs: rtt))
            }
        }
        batch.heartbeatNs = historyStart + Int64(to) * second
        try db.write(batch, session: session)
        try db.endSession(session, stoppedNs: historyStart + Int64(to) * second)
    }
}

/// The JSON object in the page's data block, parsed as a browser would.
func embeddedData(_ html: String) throws -> [String: Any] {
    let open = "<script type=\"application/json\" id=\"data\">"
    let start = try #require(html.range(of: open))
    let end = try #require(html.range(of: "</script>", range: start.upperBound..<html.endIndex))
    let text = String(html[start.upperBound..<end.lowerBound])
    return try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

func loadHistory(_ options: ReportOptions) throws -> (ReportInput, URL) {
    let dir = try temporaryDirectory()
    let path = dir.appendingPathComponent("h.db").path
    try makeHistory(at: path)
    let db = try Database(path: path, mode: .readOnly)
    return (try ReportInput.load(from: db, options: options), dir)
}

let window = ReportOptions(since: historyStart - 300 * second, until: historyStart + 2700 * second, timeoutNs: 2 * second)

@Suite struct ExportDataTests {
    @Test func everyEmbeddedEpochEqualsTheJSONReport() throws {
        let (input, dir) = try loadHistory(window)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = try exportHTML(input, ExportOptions(report: window, generatedNs: historyStart + 3000 * second))
        let data = try embeddedData(html)
        let levels = try #require(data["levels"] as? [[String: Any]])
        #expect(levels.count == exportEpochWidths(span: window.until - window.since).count)
        #expect(levels.count >= 2)
        var compared = 0
        for level in levels {
            let epochMs = try #require(level["epoch_ms"] as? Int)
            var options = window
            options.epochNs = Int64(epochMs) * 1_000_000
            let report = try makeReport(input, options)
            // The figures as `pingem report --format json` prints them.
            let json = try #require(JSONSerialization.jsonObject(
                with: Data(render(report, as: .json, color: false).utf8)) as? [String: Any])
            let reportTargets = try #require(json["targets"] as? [[String: Any]])
            let columns = try #require(level["targets"] as? [[String: [Any]]])
            #expect(columns.count == reportTargets.count)
            for (target, column) in zip(reportTargets, columns) {
                let epochs = try #require(target["epochs"] as? [[String: Any]])
                #expect(column["sent"]?.count == epochs.count)
                for (k, epoch) in epochs.enumerated() {
                    for key in ["sent", "lost", "late", "errors", "unknown"] {
                        #expect(column[key]?[k] as? Int == epoch[key] as? Int, "\(key) of epoch \(k) at \(epochMs) ms")
                    }
                    #expect((column["coverage"]?[k] as? NSNumber)?.doubleValue == (epoch["coverage"] as? NSNumber)?.doubleValue)
                    let rtt = try #require(epoch["rtt_ms"] as? [String: Any])
                    for key in ["min", "p50", "p90", "p99", "max"] {
                        let expected = (rtt[key] as? NSNumber).map { Int(($0.doubleValue * 1000).rounded()) }
                        #expect(column[key]?[k] as? Int == expected, "\(key) of epoch \(k) at \(epochMs) ms")
                    }
                    compared += 1
                }
            }
        }
        #expect(compared > 100)
    }

    @Test func summaryAndSingleProbesAgreeWithTheReport() throws {
        let (input, dir) = try loadHistory(window)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try embeddedData(try exportHTML(input, ExportOptions(report: window, generatedNs: 0)))
        let report = try makeReport(input, window)
        let targets = try #require(data["targets"] as? [[String: Any]])
        let probes = try #require(data["probes"] as? [[String: [Int]]])
        #expect(targets.count == 2 && probes.count == 2)
        for (i, target) in report.targets.enumerated() {
            let summary = try #require(targets[i]["summary"] as? [String: Any])
            #expect(summary["sent"] as? Int == target.summary.sent)
            #expect(summary["lost"] as? Int == target.summary.lost)
            #expect(targets[i]["target"] as? String == target.target)
            #expect((targets[i]["outages"] as? [Any])?.count == target.outages.count)
            let outcome = try #require(probes[i]["outcome"])
            let dt = try #require(probes[i]["dt_ms"])
            #expect(outcome.count == target.summary.sent)
            #expect(outcome.filter { $0 >= 0 }.count == target.summary.received)
            #expect(outcome.filter { $0 == -2 }.count == target.summary.late)
            #expect(outcome.filter { $0 == -3 }.count == target.summary.errors)
            #expect(outcome.filter { $0 < 0 && $0 != -4 }.count == target.summary.lost)
            // Send times rebuild from the deltas: the target's first and last probes.
            let first = window.since / 1_000_000 + Int64(dt[0]), last = window.since / 1_000_000 + Int64(dt.reduce(0, +))
            #expect(first == (historyStart + Int64(i) * 500_000_000) / 1_000_000)
            #expect(last == (historyStart + 2399 * second + Int64(i) * 500_000_000) / 1_000_000)
        }
        // The outage of "router" (8 probes) is there.
        #expect(report.targets[0].outages.contains { $0.lost == 8 })
    }

    @Test func longWindowsEmbedMinuteEpochsAndNoSingleProbes() throws {
        let week = 7 * 86400 * second
        #expect(exportEpochWidths(span: week).first == 60 * second)
        #expect(exportEpochWidths(span: 6 * 3600 * second).first == 10 * second)
        var options = window
        options.since = options.until - week
        let (input, dir) = try loadHistory(options)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try embeddedData(try exportHTML(input, ExportOptions(report: options, generatedNs: 0)))
        #expect(data["probes"] is NSNull)
        let levels = try #require(data["levels"] as? [[String: Any]])
        #expect(levels.first?["epoch_ms"] as? Int == 60_000)
    }

    @Test func hostileLabelsStayText() throws {
        let (input, dir) = try loadHistory(window)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = try exportHTML(input, ExportOptions(report: window, generatedNs: 0))
        // Only the page's own two scripts end; the label never makes markup.
        #expect(html.components(separatedBy: "</script>").count == 3)
        #expect(!html.contains("<img"))
        #expect(!html.contains("\u{2028}"))
        let data = try embeddedData(html)
        let names = (data["targets"] as? [[String: Any]])?.compactMap { $0["target"] as? String }
        #expect(names == ["router", hostileLabel + "\u{2028}&"])
        #expect(embedJSON("\"</b>&\u{2029}\"") == "\"\\u003c/b\\u003e\\u0026\\u2029\"")
        #expect(escapeHTML("<a href='x'>&\"") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;")
    }

    @Test func pageForbidsEveryRequest() throws {
        let (input, dir) = try loadHistory(window)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = try exportHTML(input, ExportOptions(report: window, generatedNs: 0))
        #expect(html.contains("http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'sha256-"))
        #expect(!html.contains("unsafe-inline"))
        #expect(!html.contains("http://") && !html.contains("https://"))
    }

    @Test func defaultFileNameIsTheWindowInUTC() {
        #expect(exportFileName(since: 1_795_000_000 * second, until: 1_795_003_600 * second)
                == "pingem-20261118T1106Z-20261118T1206Z.html")
    }
}
