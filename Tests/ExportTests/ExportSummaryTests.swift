// Export over windows longer than a week: hourly summaries answer whole
// hours, so each embedded level is the summary-path report at its width, and
// every count equals what classifying every probe (--exact) gives.
import Foundation
@testable import Reports
import Store
import Testing
import TestSupport

/// The ExportTests history with its hours summarized, and an 8-day window
/// ending on the whole hour after it (so every hour of it is whole).
func summarizedHistory(at path: String) throws -> ReportOptions {
    try makeHistory(at: path)
    let db = try Database(path: path, mode: .readWrite)
    while try db.summarizeHours(endingBy: historyStart + 3 * 3600 * second, maxHours: 10) > 0 {}
    let until = historyStart + 2 * 3600 * second
    return ReportOptions(since: until - 8 * 86400 * second, until: until, timeoutNs: 2 * second)
}

@Suite struct ExportSummaryTests {
    @Test func longWindowsReadSummariesAndEachLevelEqualsTheSummaryReport() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.db").path
        let options = try summarizedHistory(at: path)
        let db = try Database(path: path, mode: .readOnly)
        let export = ExportOptions(report: options, generatedNs: 0)
        #expect(exportUsesSummaries(export))
        let input = try exportInput(from: db, export, exact: false)
        let exactInput = try exportInput(from: db, export, exact: true)
        // Every hour of the history is whole and summarized: no raw probe is read.
        #expect(!input.summaries.isEmpty && input.probes.isEmpty)
        #expect(exactInput.summaries.isEmpty && !exactInput.probes.isEmpty)

        let data = try embeddedData(try exportHTML(input, export))
        #expect(data["percentiles"] as? String == "approximate")
        #expect(data["probes"] is NSNull)
        let levels = try #require(data["levels"] as? [[String: Any]])
        #expect(levels.compactMap { $0["epoch_ms"] as? Int } == [3_600_000, 86_400_000])
        var compared = 0
        for level in levels {
            let epochMs = try #require(level["epoch_ms"] as? Int)
            var o = options
            o.epochNs = Int64(epochMs) * 1_000_000
            let summarized = try makeReport(input, o), exact = try makeReport(exactInput, o)
            #expect(summarized.percentilesApproximate)
            let columns = try #require(level["targets"] as? [[String: [Any]]])
            for (t, column) in columns.enumerated() {
                let epochs = summarized.targets[t].epochs, exactEpochs = exact.targets[t].epochs
                #expect(column["sent"]?.count == epochs.count && epochs.count == exactEpochs.count)
                for k in epochs.indices {
                    let s = epochs[k].summary, e = exactEpochs[k].summary
                    #expect(column["sent"]?[k] as? Int == s.sent && s.sent == e.sent)
                    #expect(column["lost"]?[k] as? Int == s.lost && s.lost == e.lost)
                    #expect(column["late"]?[k] as? Int == s.late && s.late == e.late)
                    #expect(column["errors"]?[k] as? Int == s.errors && s.errors == e.errors)
                    #expect(column["unknown"]?[k] as? Int == s.unknown && s.unknown == e.unknown)
                    #expect((column["coverage"]?[k] as? NSNumber)?.doubleValue == Double(trimmed(s.coverage, 4)))
                    #expect(s.coverage == e.coverage)
                    #expect(column["p50"]?[k] as? Int == s.rtt.p50.map { Int(($0 * 1000).rounded()) })
                    #expect(column["max"]?[k] as? Int == e.rtt.max.map { Int(($0 * 1000).rounded()) })
                    if let p = s.rtt.p99, let q = e.rtt.p99 { #expect(abs(p - q) <= q * 0.01) }
                    compared += 1
                }
            }
        }
        #expect(compared > 400)
        // The whole window: counts and outages exactly as --exact gives them,
        // and a histogram holding every received probe.
        let whole = try makeReport(exactInput, options)
        let targets = try #require(data["targets"] as? [[String: Any]])
        for (i, target) in whole.targets.enumerated() {
            let summary = try #require(targets[i]["summary"] as? [String: Any])
            #expect(summary["sent"] as? Int == target.summary.sent && target.summary.sent > 0)
            #expect(summary["lost"] as? Int == target.summary.lost)
            #expect((targets[i]["outages"] as? [[Int]])?.count == target.outages.count)
            let histogram = try #require(targets[i]["histogram"] as? [String: Any])
            #expect((histogram["counts"] as? [Int])?.reduce(0, +) == target.summary.received)
        }
        // --exact: the same page as classifying every probe, exact percentiles.
        let exactData = try embeddedData(try exportHTML(exactInput, export))
        #expect(exactData["percentiles"] as? String == "exact")
        #expect((exactData["levels"] as? [[String: Any]])?.count == levels.count)
    }

    @Test func weeksAndShorterKeepTheirLevelsAndReadEveryProbe() {
        var options = window
        options.since = options.until - 7 * 86400 * second
        let week = ExportOptions(report: options, generatedNs: 0)
        #expect(!exportUsesSummaries(week))
        #expect(exportLevelWidths(week) == exportEpochWidths(span: 7 * 86400 * second))
        #expect(!exportUsesSummaries(ExportOptions(report: window, generatedNs: 0)))
        options.since = options.until - 365 * 86400 * second
        let year = ExportOptions(report: options, generatedNs: 0)
        #expect(exportUsesSummaries(year))
        #expect(exportLevelWidths(year) == [3600, 6 * 3600, 86400, 7 * 86400].map { $0 * second })
        #expect(exportUsesSummaries(ExportOptions(report: window, generatedNs: 0, chosenEpochNs: 3600 * second)))
        #expect(!exportUsesSummaries(ExportOptions(report: options, generatedNs: 0, chosenEpochNs: 60 * second)))
    }
}
