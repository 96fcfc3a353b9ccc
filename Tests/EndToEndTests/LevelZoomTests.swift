// Issue 11: serve's page keeps its zoom down to minute epochs and single
// probes on a window longer than 7 days (which embeds hours and more only).
// Headless Chromium, driven over the DevTools protocol, opens the live page
// of an 8-day history at a zoom of one hour: live.js fetches that range's
// minute epochs from /level, and hover on one says exactly what
// `pingem report --epoch 1m` says of that minute; at ten minutes it fetches
// single probes from /probes; a chosen epoch fetches nothing; with serve gone, zooming out to where the page
// would need new minute epochs falls back to the embedded hours, with a note.
import Foundation
import Glibc
import Testing
import TestSupport

private let zoomStateScript = """
    (function () {
      const root = document.documentElement, text = function (id) { const e = document.getElementById(id); return e ? e.textContent : ""; };
      const tip = document.getElementById("tip");
      return JSON.stringify({ drawn: root.dataset.drawn || "", level: root.dataset.level || "", zoom: text("live-zoom"),
        view: text("view"), tip: tip && !tip.hidden ? tip.textContent : "", errors: text("errors") });
    })()
    """

private struct ZoomState: Decodable, CustomStringConvertible {
    var drawn: String, level: String, zoom: String, view: String, tip: String, errors: String
    var description: String { "level=\(level) zoom=\(zoom) view=\(view) errors=\(errors) tip=\(tip)" }
}

/// The page's milliseconds as its tooltip writes them (fmtMs in the page's script).
private func pageMs(_ value: Any?) -> String {
    guard let ms = (value as? NSNumber)?.doubleValue else { return "–" }
    return String(format: ms < 10 ? "%.2f" : ms < 100 ? "%.1f" : "%.0f", ms) + " ms"
}

@Suite(.serialized) struct LevelZoomTests {
    @Test(.timeLimit(.minutes(3)))
    func zoomingALongLivePageShowsTheReportsMinuteEpochsThenSingleProbes() throws {
        let chromium = try requireChromium()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pingem-level-zoom-\(getpid())")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let second: Int64 = 1_000_000_000, minute = 60 * second, hour = 60 * minute
        let history = try LongHistory(at: folder.appendingPathComponent("z.db").path, start: 1_795_000_000 * second)

        let port = try freePort()
        let serve = try ChildProcess([pingemBinary, "serve", "--db", history.path, "--listen", "127.0.0.1:\(port)"],
                                     outputDirectory: folder, name: "serve")
        defer { serve.signal(SIGKILL); serve.wait(timeout: 5) }
        try #require(waitUntil(limit: 20) { serve.stderr.contains("pingem: serving") }, "pingem serve did not start: \(serve.stderr)")
        let browser = try DevToolsBrowser(chromium: chromium, profile: folder.appendingPathComponent("profile").path,
                                          logPath: folder.appendingPathComponent("chromium.log").path)
        defer { browser.quit() }
        let page = try browser.attachToPage()
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] { try browser.send(domain, session: page) }
        let base = "http://127.0.0.1:\(port)/?since=\(iso(history.since))&until=\(iso(history.until))"
        func open(_ hash: String) throws {
            // A new document each time: a change of the hash alone is no reload.
            try browser.send("Page.navigate", ["url": "about:blank"], session: page)
            try browser.send("Page.navigate", ["url": base + hash], session: page)
        }
        func waitForPage(limit: Double = 30, _ condition: (ZoomState) -> Bool) throws -> ZoomState {
            let deadline = Date().addingTimeInterval(limit)
            var last: ZoomState?
            while Date() < deadline {
                if let json = try? browser.evaluate(zoomStateScript, session: page) as? String,
                   let s = try? JSONDecoder().decode(ZoomState.self, from: Data(json.utf8)) {
                    last = s
                    if condition(s) { return s }
                }
                usleep(100_000)
            }
            throw E2EError("the page did not get there within \(limit) s: \(last.map { "\($0)" } ?? browser.chromiumLog)")
        }
        func ms(_ ns: Int64) -> String { String(ns / 1_000_000) }

        // The whole 8 days: the embedded hourly epochs, nothing fetched.
        try open("")
        let whole = try waitForPage { $0.drawn == "1" && $0.level == "3600s" }
        #expect(whole.zoom == "" && whole.errors == "", "\(whole)")

        // An hour in summarized hours: minute epochs from serve; hover on one.
        let from = history.dense + 30 * minute, to = from + hour, at = from + 15 * minute + 30 * second
        try open("#from=\(ms(from))&to=\(ms(to))&hover=\(ms(at))")
        let zoomed = try waitForPage { $0.level == "60s" && $0.tip.contains("(1.0 min epoch)") }
        #expect(zoomed.zoom == "1-minute epochs from pingem serve", "\(zoomed)")
        let report = runCommand([pingemBinary, "report", "--db", history.path, "--format", "json", "--target", "a",
                                 "--epoch", "1m", "--since", iso(from), "--until", iso(to)])
        let json = try #require(JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])
        let epochs = try #require((json["targets"] as? [[String: Any]])?.first?["epochs"] as? [[String: Any]])
        try #require(epochs.count == 60)
        let sent = try #require(epochs[15]["sent"] as? Int), lost = try #require(epochs[15]["lost"] as? Int)
        let rtt = try #require(epochs[15]["rtt_ms"] as? [String: Any])
        #expect(zoomed.tip.hasPrefix("a\n"), "\(zoomed)")
        #expect(sent == 60 && lost > 0 && zoomed.tip.contains("sent \(sent), lost \(lost) ("), "\(zoomed)")
        let figures = "min \(pageMs(rtt["min"]))  p50 \(pageMs(rtt["p50"]))  p90 \(pageMs(rtt["p90"]))\n"
            + "p99 \(pageMs(rtt["p99"]))  max \(pageMs(rtt["max"]))"
        #expect(zoomed.tip.contains(figures), "\(zoomed) lacks \(figures)")

        // Ten minutes of it: single probes from serve; hover on one probe.
        let near = from + 10 * minute, probe = near + 4 * minute + 7 * second
        try open("#from=\(ms(near))&to=\(ms(near + 10 * minute))&hover=\(ms(probe))")
        let closer = try waitForPage { $0.level == "probes" && $0.tip.contains("probe sent ") }
        #expect(closer.zoom == "single probes from pingem serve", "\(closer)")
        let expected = history.rttMs(a: probe).map { "reply after \(pageMs(NSNumber(value: $0)))" } ?? "lost (no reply)"
        #expect(closer.tip.contains(expected), "\(closer) lacks \(expected)")

        // A chosen epoch draws that epoch and nothing finer: zoomed to the same
        // hour, nothing is fetched (the fetch above came well within this wait).
        try browser.send("Page.navigate", ["url": "about:blank"], session: page)
        try browser.send("Page.navigate", ["url": base + "&epoch=1h#from=\(ms(from))&to=\(ms(to))"], session: page)
        _ = try waitForPage { $0.drawn == "1" && $0.view.hasPrefix("Showing ") }
        usleep(2_000_000)
        let chosen = try waitForPage { $0.drawn == "1" }
        #expect(chosen.level == "3600s" && chosen.zoom == "", "\(chosen)")

        let problems = browser.pageProblems
        #expect(problems.isEmpty, "\(problems.map { "\($0.method) \($0.params)" })")

        // serve gone: zooming out (the wheel, over the first graph) to where
        // new minute epochs are needed shows the embedded hours and says why.
        try open("#from=\(ms(from))&to=\(ms(to))")
        _ = try waitForPage { $0.level == "60s" }
        serve.signal(SIGKILL); serve.wait(timeout: 5)
        _ = try browser.evaluate("""
            (function () { const o = document.querySelector(".overlay"), r = o.getBoundingClientRect();
              for (let i = 0; i < 8; i++) o.dispatchEvent(new WheelEvent("wheel", { deltaY: 100, clientX: r.left + r.width / 2, clientY: r.top + 60, bubbles: true, cancelable: true }));
              return 1; })()
            """, session: page)
        let fallen = try waitForPage { $0.zoom.hasPrefix("could not load 1-minute epochs") }
        #expect(fallen.level == "3600s" && fallen.zoom.hasSuffix("showing the embedded 1 h epochs"), "\(fallen)")
        #expect(fallen.errors == "", "\(fallen)")
    }
}
