// Issue 13: the page's hop strip and where labels, drawn by headless
// Chromium over the DevTools protocol. `pingem export html` of TestSupport's
// PathHistory (hop 2 rate-limits; an outage whose loss begins at hop 3):
// one strip row per hop labelled with TTL and address, the target last; a
// forward-loss cell, an unanswered-but-forwarded cell and a clean cell each
// in their own colour, an epoch without a round left empty; hover on a cell
// says its counts; the outage's where is on the page in the report's words.
import Foundation
import Glibc
import Testing
import TestSupport

/// Everything the test reads off the page once it is drawn: the first
/// panel's row labels, the tooltip, the summary table, and the colour of
/// the strip cell at each asked [second of the window, row] (plot margins:
/// the page's M.left 58 and M.left + M.right 70; a row's middle is 4 px
/// below its label's top).
private func stripStateScript(cells: [(Double, Int)], view: (Double, Double)) -> String {
    """
    (function () {
      const root = document.documentElement, panel = document.querySelector("#panels .panel");
      if (!panel || root.dataset.drawn !== "1") return JSON.stringify({ drawn: "" });
      const canvas = panel.querySelector("canvas"), labels = [].map.call(panel.querySelectorAll(".hop-label"), function (l) { return l; });
      // Read from a copy made for reading: readbacks of the page's own canvas warn.
      const copy = document.createElement("canvas"); copy.width = canvas.width; copy.height = canvas.height;
      const ctx = copy.getContext("2d", { willReadFrequently: true }), dpr = window.devicePixelRatio || 1, w = canvas.clientWidth - 70;
      ctx.drawImage(canvas, 0, 0);
      const at = function (s, row) {
        const x = 58 + (s - \(view.0)) / (\(view.1 - view.0)) * w, y = labels[row].offsetTop - canvas.offsetTop + 4;
        const d = ctx.getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data;
        return [d[0], d[1], d[2]];
      };
      const style = getComputedStyle(root), hex = function (name) {
        const v = style.getPropertyValue(name).trim(); return [1, 3, 5].map(function (i) { return parseInt(v.slice(i, i + 2), 16); });
      };
      const tip = document.getElementById("tip");
      return JSON.stringify({ drawn: "1", rows: panel.dataset.hopRows, labels: labels.map(function (l) { return l.textContent; }),
        cells: [\(cells.map { "at(\($0.0), \($0.1))" }.joined(separator: ","))],
        colors: { loss: hex("--l4"), quiet: hex("--quiet"), ok: hex("--hopok"), bg: hex("--bg") },
        tip: tip && !tip.hidden ? tip.textContent : "", summary: panel.querySelector(".summary table").textContent,
        errors: document.getElementById("errors").textContent, legend: !document.getElementById("legend-hops").hidden });
    })()
    """
}

private struct StripState: Decodable {
    var drawn: String
    var rows: String?
    var labels: [String]?
    var cells: [[Int]]?
    var colors: [String: [Int]]?
    var tip: String?
    var summary: String?
    var errors: String?
    var legend: Bool?
}

@Suite(.serialized) struct PathStripBrowserTests {
    @Test(.timeLimit(.minutes(3)))
    func thePageDrawsOneStripRowPerHopAndLabelsTheOutagesWhere() throws {
        let chromium = try requireChromium()
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let second: Int64 = 1_000_000_000
        let start = 1_795_000_000 * second - (1_795_000_000 * second) % (3600 * second)
        let history = try PathHistory(at: folder.appendingPathComponent("p.db").path, start: start)
        let page = folder.appendingPathComponent("page.html").path
        let export = runCommand([pingemBinary, "export", "html", "--db", history.path, "-o", page,
                                 "--since", iso(history.since), "--until", iso(history.until)])
        try #require(export.status == 0, "\(export.stderr)")

        let browser = try DevToolsBrowser(chromium: chromium, profile: folder.appendingPathComponent("profile").path,
                                          logPath: folder.appendingPathComponent("chromium.log").path)
        defer { browser.quit() }
        let tab = try browser.attachToPage()
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] { try browser.send(domain, session: tab) }
        let startS = Double(start / second)
        // Two minutes around the outage: 1 s epochs, a round in every tenth.
        let view = (startS + 240, startS + 360)
        func show(hover: Double, hop: Int?) throws -> StripState {
            let hash = "#from=\(Int64(view.0 * 1000))&to=\(Int64(view.1 * 1000))&hover=\(Int64(hover * 1000))"
                + (hop.map { "&hop=\($0)" } ?? "")
            try browser.send("Page.navigate", ["url": "about:blank"], session: tab)
            try browser.send("Page.navigate", ["url": "file://" + page + hash], session: tab)
            // Cells: hop 3 in the outage's first round (forward loss), hop 2
            // two rounds before (rate-limited, forwarded), hop 1 there
            // (answered), hop 1 between rounds (no round).
            let script = stripStateScript(cells: [(startS + 300.5, 2), (startS + 280.5, 1), (startS + 280.5, 0), (startS + 285.5, 0)],
                                          view: view)
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let json = try? browser.evaluate(script, session: tab) as? String,
                   let state = try? JSONDecoder().decode(StripState.self, from: Data(json.utf8)), state.drawn == "1" { return state }
                usleep(100_000)
            }
            throw E2EError("the page was not drawn within 30 s: \(browser.chromiumLog)")
        }

        let state = try show(hover: startS + 300.5, hop: 2)
        #expect(state.errors == "" && state.legend == true, "\(state)")
        #expect(state.rows == "6")
        #expect(state.labels == ["1  198.18.1.1", "2  198.18.2.1", "3  198.18.3.1", "4  198.18.4.1", "5  198.18.5.1",
                                 "6  203.0.113.50  (target)"])
        let cells = try #require(state.cells), colors = try #require(state.colors)
        #expect(cells.count == 4)
        #expect(cells[0] == colors["loss"], "forward loss: \(cells[0]) \(colors)")
        #expect(cells[1] == colors["quiet"], "unanswered but forwarded: \(cells[1]) \(colors)")
        #expect(cells[2] == colors["ok"], "answered: \(cells[2]) \(colors)")
        #expect(cells[3] == colors["bg"], "no round: \(cells[3]) \(colors)")
        #expect(cells[0] != cells[1])
        #expect(state.tip?.hasPrefix("far\nhop 3, 198.18.3.1\n") == true, "\(state.tip ?? "")")
        #expect(state.tip?.hasSuffix("(1.0 s epoch)\nsent 1, answered 0, forward lost 1") == true, "\(state.tip ?? "")")
        // The outage's where: in the summary and in the graph's tooltip.
        #expect(state.summary?.contains("Worst outagewhere: hop 3, 198.18.3.1") == true, "\(state.summary ?? "")")
        let graph = try show(hover: startS + 310.5, hop: nil)
        #expect(graph.tip?.hasSuffix(", 30 lost\nwhere: hop 3, 198.18.3.1") == true, "\(graph.tip ?? "")")
        let quiet = try show(hover: startS + 280.5, hop: 1)
        #expect(quiet.tip?.hasSuffix("sent 1, answered 0, forward lost 0\n1 unanswered while later hops answered: not loss") == true,
                "\(quiet.tip ?? "")")
        let problems = browser.pageProblems
        #expect(problems.isEmpty, "\(problems.map { "\($0.method) \($0.params)" })")
    }
}
