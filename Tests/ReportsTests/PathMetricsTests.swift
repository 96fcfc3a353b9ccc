// /metrics' per-hop path counters (Serve/MetricsPaths.swift) on the random
// path histories of PathSummaryPropertyTests: they count what the report's
// path counts, whether from path summaries or raw rounds.
import Testing
import TestSupport
@testable import Reports
@testable import Serve
@testable import Store

/// /metrics' per-hop counters count what the report's path counts, from
/// path summaries at start and from raw rounds scrape by scrape.
@Test(arguments: [5, 6] as [UInt64])
func metricsHopCountersCountWhatTheReportCounts(seed: UInt64) throws {
    let file = TemporaryFolder()
    let db = try Database(path: file.file("pingem.db"), mode: .readWrite)
    let end = try writePathHistory(db, seed: seed, hours: 10)
    for timeout in [2 * second, 500 * millisecond, 3 * second] {
        let options = ReportOptions(since: t0 - 3600 * second, until: end + 3600 * second, epochNs: nil, timeoutNs: timeout)
        var input = try ReportInput.load(from: db, options: options, summaries: true)
        try input.loadPathProbes(from: db, options: options)
        let report = try makeReport(input, options)
        // At start over the whole history, and in two scrapes (the second
        // reads only the rounds after the first's cutoff).
        var whole = MetricsState(timeoutNs: timeout, settleNs: 5 * second)
        try whole.advance(db: db, now: end + 3600 * second + timeout + 5 * second)
        var scraped = MetricsState(timeoutNs: timeout, settleNs: 5 * second)
        try scraped.advance(db: db, now: t0 + 5 * 3600 * second + 1234 * millisecond)
        try scraped.advance(db: db, now: end + 3600 * second + timeout + 5 * second)
        for metrics in [whole, scraped] {
            for target in report.targets {
                let host = try #require(try db.targets().first { $0.name == target.target }).host
                var byHop: [Int: PathHopTotals] = [:]
                for (key, totals) in metrics.pathTotals where key.labels.host == host {
                    byHop[key.hop, default: PathHopTotals()].add(sent: Int(totals.sent), answered: Int(totals.answered),
                                                                 forwardLost: Int(totals.forwardLost))
                }
                let context = "seed \(seed) timeout \(timeout) \(target.target)"
                #expect(byHop.keys.sorted() == target.path.map(\.ttl), "\(context)")
                for hop in target.path {
                    let counted = byHop[hop.ttl] ?? PathHopTotals()
                    let forwardLost = Int64(((hop.forwardLossPct ?? 0) * Double(hop.sent) / 100).rounded())
                    #expect(counted.sent == Int64(hop.sent) && counted.answered == Int64(hop.answered), "\(context) hop \(hop.ttl)")
                    #expect(counted.forwardLost == forwardLost, "\(context) hop \(hop.ttl)")
                }
            }
        }
        let text = whole.render(now: end)
        #expect(text.contains("# TYPE pingem_path_probes_sent_total counter"))
        #expect(text.contains("pingem_path_forward_lost_total{host=\"10.0.0.1\",ip=\"10.0.0.1\",source=\"\",tos=\"0\",hop=\"1\"} "))
    }
}
