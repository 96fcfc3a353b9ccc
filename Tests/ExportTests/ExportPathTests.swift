// The page's hop strips and where labels (issue 13): what the data block
// embeds of a history with path rounds (TestSupport's PathHistory: hop 2
// rate-limits, the loss of an outage begins at hop 3), exactly, and that a
// history without rounds embeds none of it.
import Foundation
@testable import Reports
import Store
import Testing
import TestSupport

@Suite struct ExportPathTests {
    private func pathData() throws -> (String, PathHistory, URL) {
        let dir = try temporaryDirectory()
        let history = try PathHistory(at: dir.appendingPathComponent("p.db").path, start: historyStart)
        let options = ExportOptions(report: ReportOptions(since: history.since, until: history.until), generatedNs: 0)
        let input = try exportInput(from: try Database(path: history.path, mode: .readOnly), options, exact: false)
        return (try exportData(input, options), history, dir)
    }

    @Test func theDataBlockCarriesEachHopsRowsCellsAndTheOutagesWhere() throws {
        let (data, history, dir) = try pathData()
        defer { try? FileManager.default.removeItem(at: dir) }
        let startMs = history.since / 1_000_000
        // The outage, labelled in the report's words: not the rate-limiting hop 2.
        #expect(data.contains("\"outages\":[[\(startMs + 300_000),\(startMs + 330_000),30,\"where: hop 3, 198.18.3.1\"]],"))
        // One row per hop, the target last, with the window's figures.
        func row(_ ttl: Int, _ address: String, _ answered: Int, _ loss: String, _ forward: String, target: Bool = false) -> String {
            "{\"ttl\":\(ttl)," + (target ? "\"target\":true," : "") + "\"address\":\"\(address)\",\"sent\":60,"
                + "\"answered\":\(answered),\"loss_pct\":\(loss),\"forward_loss_pct\":\(forward)}"
        }
        let rows = [row(1, "198.18.1.1", 60, "0.000", "0.000"), row(2, "198.18.2.1", 31, "48.333", "1.667"),
                    row(3, "198.18.3.1", 57, "5.000", "5.000"), row(4, "198.18.4.1", 57, "5.000", "5.000"),
                    row(5, "198.18.5.1", 57, "5.000", "5.000"), row(6, "203.0.113.50", 57, "5.000", "5.000", target: true)]
        #expect(data.contains("\"path\":[" + rows.joined(separator: ",") + "],\"histogram\":"))
        // The 10 s level: one round per epoch. A rate-limited hop 2 is
        // unanswered but not forward lost; the outage's rounds lose hop 3 on.
        let tenSeconds = (0..<60).map { i in
            switch i {
            case 30, 32: "1/5 3:1:0:1 4:1:0:1 5:1:0:1 t:1:0:1"
            case 31: "1/5 2:1:0:1 3:1:0:1 4:1:0:1 5:1:0:1 t:1:0:1"
            default: i % 2 == 0 ? "1/5 2:1:0:0" : "1/5"
            }
        }
        let column = { (cells: [String]) in "\"path\":[" + cells.map { "\"\($0)\"" }.joined(separator: ",") + "]}" }
        #expect(data.contains(column(tenSeconds)))
        // The 1 s level: most epochs have no round.
        #expect(data.contains(column((0..<600).map { $0 % 10 == 0 ? tenSeconds[$0 / 10] : "" })))
        #expect(data.components(separatedBy: "\"path\":[\"").count == 3)
    }

    @Test func aHistoryWithoutPathRoundsEmbedsNoStripAndNoWhere() throws {
        let (input, dir) = try loadHistory(window)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try exportData(input, ExportOptions(report: window, generatedNs: 0))
        #expect(!data.contains("\"path\"") && !data.contains("where"))
        #expect(data.contains("\"outages\":[["))
    }

    @Test func hopCellsListOnlyWhatDiffersFromACleanEpoch() {
        func hop(_ ttl: Int, _ sent: Int, _ answered: Int, _ lost: Int, target: Bool = false) -> PathHopCounts {
            PathHopCounts(ttl: ttl, isTarget: target, sent: sent, answered: answered, forwardLost: lost)
        }
        #expect(hopCells([]) == "")
        #expect(hopCells([hop(1, 2, 2, 0), hop(2, 2, 2, 0), hop(3, 2, 2, 0, target: true)]) == "2/2")
        // Hop 2 not probed, the target reached in one round of two.
        #expect(hopCells([hop(1, 2, 2, 0), hop(3, 2, 2, 0), hop(4, 2, 1, 1, target: true)]) == "2/3 2:0:0:0 t:2:1:1")
        // No target probe at all.
        #expect(hopCells([hop(1, 1, 0, 1)]) == "1/1 1:1:0:1 t:0:0:0")
    }
}
