// The epoch chosen in the live page: the data then holds that one level and
// no single probes, with exactly the epochs `pingem report --epoch` counts;
// an epoch that would cut the window too finely is one sentence.
import Foundation
import Reports
@testable import Serve
import Store
import Testing
import TestSupport

@Suite struct LiveEpochTests {
    @Test func aChosenEpochIsTheReportsEpochs() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("e.db").path
        try writeSession(path, from: 5, to: 25, runID: 1)
        let configuration = ServeConfiguration(databasePath: path)
        let query = LiveQuery(since: iso(start), until: iso(start + 120 * second), epoch: "10s")
        let data = try liveData(query, configuration: configuration, now: start + 200 * second)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any])
        let levels = try #require(object["levels"] as? [[String: Any]])
        #expect(levels.count == 1)
        #expect(levels.first?["epoch_ms"] as? Int == 10_000)
        #expect(object["probes"] is NSNull)
        let sent = try sentColumn(Substring(data))

        let options = ReportOptions(since: start, until: start + 120 * second, epochNs: 10 * second)
        let report = try makeReport(try ReportInput.load(from: try Database(path: path, mode: .readOnly), options: options), options)
        #expect(sent == report.targets[0].epochs.map(\.summary.sent))
        #expect(sent == [5, 10, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0])

        // Without a choice ("auto" in the page) the export's ladder of widths.
        let auto = try liveData(LiveQuery(since: iso(start), until: iso(start + 120 * second)),
                                configuration: configuration, now: start + 200 * second)
        #expect(try sentColumn(Substring(auto)).count == 120)
    }

    @Test func anEpochTooFineForTheWindowIsOneSentence() throws {
        let configuration = ServeConfiguration(databasePath: "/nonexistent/x.db")
        #expect {
            _ = try LiveQuery(last: "7d", epoch: "1s").exportOptions(now: start, configuration: configuration)
        } throws: { error in
            "\(error)" == "An epoch of 1s cuts this window into more than 12000 epochs: choose a longer epoch or a shorter window."
        }
    }
}
