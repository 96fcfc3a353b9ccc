import Foundation
import Glibc
import Testing
import TestSupport
@testable import pingem_responder

// Issue 6, end to end: a real `pingem record` probes the project's test
// responder in a network namespace; `pingem serve` (outside it, on a
// loopback port) serves the database; headless Chromium, driven over the
// DevTools protocol, keeps the live page open and reads its state again and
// again. New probes and epochs must appear without a reload, keep appearing
// after the recorder is stopped and started again, and the page's window and
// epoch controls must redraw it with the chosen window and epoch: the
// same epochs `pingem report --epoch` gives. Any console error, uncaught
// exception or CSP violation fails the test.

/// What the test reads from the open page (one Runtime.evaluate).
struct LivePageState: Decodable, CustomStringConvertible {
    var drawn, level: String
    var updates, levels: Int
    var epochMs, sinceMs, untilMs, generatedMs: Int64
    /// Epochs with probes at the page's finest level, first target.
    var epochs: Int
    /// Start (Unix ms) of the last epoch with probes there.
    var lastEpoch: Int64
    /// The first panel's "Probes sent" figure, as drawn.
    var sent: Int
    /// The first target's `sent` and `lost` columns at the finest level.
    var sentColumn: [Int]
    var lostColumn: [Int]
    /// How old the newest probe in the page is (ms, browser clock), when
    /// the page holds single probes; -1 otherwise.
    var newestProbeAgeMs: Int64
    var status: String
    var errors: String
    var panels: Int
    var search: String
    /// Set by the test once the page loaded; gone if the page reloaded.
    var marker: Bool
    var hasWindowControl: Bool
    var hasEpochControl: Bool
    var description: String {
        "drawn=\(drawn) level=\(level) updates=\(updates) levels=\(levels) epoch=\(epochMs)ms epochs=\(epochs) "
            + "lastEpoch=\(lastEpoch) sent=\(sent) panels=\(panels) search=\(search) marker=\(marker) status=\(status) errors=\(errors)"
    }
}

private let stateScript = """
    (function () {
      const root = document.documentElement, D = JSON.parse(document.getElementById("data").textContent);
      const L = D.levels[0], c = L.targets.length ? L.targets[0] : { sent: [], lost: [] };
      let epochs = 0, last = -1;
      for (let k = 0; k < c.sent.length; k++) if (c.sent[k] > 0) { epochs++; last = k; }
      const cells = Array.from(document.querySelectorAll(".summary td"));
      const i = cells.findIndex(function (td) { return td.textContent === "Probes sent"; });
      let newest = D.since_ms;
      if (D.probes) D.probes.forEach(function (p) { let at = D.since_ms; p.dt_ms.forEach(function (d) { at += d; }); if (at > newest) newest = at; });
      const text = function (id) { const e = document.getElementById(id); return e ? e.textContent : ""; };
      return JSON.stringify({
        drawn: root.dataset.drawn || "", level: root.dataset.level || "", updates: +(root.dataset.liveUpdates || 0),
        levels: D.levels.length, epochMs: L.epoch_ms, sinceMs: D.since_ms, untilMs: D.until_ms, generatedMs: D.generated_ms,
        epochs: epochs, lastEpoch: last < 0 ? 0 : D.since_ms + L.bounds_ms[last],
        sent: i >= 0 ? +cells[i + 1].textContent : -1, sentColumn: c.sent, lostColumn: c.lost,
        newestProbeAgeMs: D.probes ? Date.now() - newest : -1, status: text("live-status"), errors: text("errors"), panels: document.querySelectorAll("section.panel").length,
        search: location.search, marker: window.pingemTestMarker === 1,
        hasWindowControl: !!document.getElementById("live-last"), hasEpochControl: !!document.getElementById("live-epoch")
      });
    })()
    """

@Suite(.serialized) struct LivePageTests {
    @Test(.timeLimit(.minutes(3)))
    func theLivePageFollowsARecorderAcrossRestartsInChromium() throws {
        let chromium = try requireChromium()
        let namespace = try TestNamespace()
        defer { namespace.destroy() }
        // The test's own folder (profile, logs, screenshot), kept after the
        // test for the screenshot; the profile is removed.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pingem-live-page-\(getpid())")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder.appendingPathComponent("profile")) }

        let responder = try namespace.startResponder([
            .init(address: "198.18.0.10", behaviour: .clean),
            .init(address: "198.18.0.12", behaviour: .lossy, seed: 7, loss_percent: 30),
        ])
        let db = namespace.directory.appendingPathComponent("live.db").path
        func startRecorder(_ label: String) throws -> ChildProcess {
            try namespace.start([pingemBinary, "record", "router=198.18.0.10", "isp=198.18.0.12",
                                 "--db", db, "--interval", "100ms"], label: label)
        }
        var recorder = try startRecorder("record-1")
        defer { recorder.signal(SIGKILL); recorder.wait(timeout: 5) }

        let port = try freePort()
        let serve = try ChildProcess([pingemBinary, "serve", "--db", db, "--listen", "127.0.0.1:\(port)"],
                                     outputDirectory: folder, name: "serve")
        defer { serve.signal(SIGKILL); serve.wait(timeout: 5) }
        try #require(waitUntil(limit: 20) { serve.stderr.contains("pingem: serving") }, "pingem serve did not start: \(serve.stderr)")
        // The page needs a database with the recorder's first batch in it.
        try #require(waitUntil(limit: 20) { runCommand([pingemBinary, "status", "--db", db]).stdout.contains("router") },
                     "the recorder wrote nothing: \(recorder.stderr)")

        let browser = try DevToolsBrowser(chromium: chromium, profile: folder.appendingPathComponent("profile").path,
                                          logPath: folder.appendingPathComponent("chromium.log").path)
        defer { browser.quit() }
        let page = try browser.attachToPage()
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] { try browser.send(domain, session: page) }
        let url = "http://127.0.0.1:\(port)/?last=15m"
        try browser.send("Page.navigate", ["url": url], session: page)

        func state() throws -> LivePageState {
            let json = try #require(try browser.evaluate(stateScript, session: page) as? String)
            return try JSONDecoder().decode(LivePageState.self, from: Data(json.utf8))
        }
        /// Polls the page every 100 ms until `condition` holds, at most `limit` s.
        func waitForPage(limit: Double, _ condition: (LivePageState) -> Bool) throws -> LivePageState {
            let deadline = Date().addingTimeInterval(limit)
            var last: LivePageState?
            while Date() < deadline {
                if let s = try? state() {
                    last = s
                    if condition(s) { return s }
                }
                usleep(100_000)
            }
            let shown = last.map { "\($0)" } ?? "no page state (\(browser.chromiumLog))"
            throw E2EError("the page did not get there within \(limit) s: \(shown)")
        }

        // Loaded and drawn: one panel per target, the controls present.
        let loaded = try waitForPage(limit: 20) { $0.drawn == "1" && $0.panels == 2 && $0.sent > 0 }
        #expect(loaded.hasWindowControl && loaded.hasEpochControl, "\(loaded)")
        #expect(loaded.untilMs - loaded.sinceMs == 15 * 60_000)
        _ = try browser.evaluate("window.pingemTestMarker = 1", session: page)

        // New probes and new epochs arrive without a reload.
        let before = try state()
        let clock = Date()
        let newer = try waitForPage(limit: 10) { $0.updates > before.updates && $0.sent > before.sent && $0.epochs > before.epochs }
        print("live page: first update \(String(format: "%.2f", Date().timeIntervalSince(clock))) s after reading \(before.sent) probes; now \(newer.sent), \(newer.epochs) epochs")
        #expect(newer.marker, "the page reloaded: \(newer)")
        #expect(newer.lastEpoch > before.lastEpoch)
        // New probes keep coming: the recorder commits every second (its
        // default --flush), serve looks every 0.5 s, so the newest probe in
        // the page is never much more than a second and a half old.
        var gaps: [Double] = [], ages: [Int64] = []
        var previous = newer, at = Date()
        for _ in 0..<4 {
            let next = try waitForPage(limit: 5) { $0.sent > previous.sent }
            gaps.append(Date().timeIntervalSince(at)); at = Date()
            ages.append(next.newestProbeAgeMs)
            previous = next
        }
        print("live page: seconds between new probes: \(gaps.map { String(format: "%.2f", $0) }); newest probe's age when drawn (ms): \(ages)")
        #expect(gaps.allSatisfy { $0 < 3 }, "\(gaps)")
        #expect(ages.allSatisfy { $0 >= 0 && $0 < 2_500 }, "\(ages)")

        // Stop the recorder, then start it again: the same open page goes on.
        recorder.signal(SIGINT)
        #expect(recorder.wait(timeout: 15) == 0, "record: \(recorder.stderr)")
        usleep(2_000_000)
        let stopped = try state()
        recorder = try startRecorder("record-2")
        let resumed = try waitForPage(limit: 15) { $0.sent > stopped.sent && $0.lastEpoch > stopped.lastEpoch }
        #expect(resumed.marker, "the page reloaded: \(resumed)")
        print("live page: after the recorder restart \(resumed.sent) probes (\(stopped.sent) when it stopped)")
        #expect(runCommand([pingemBinary, "status", "--db", db]).stdout.contains("session 2"))

        // The controls: window 1h and epoch 10s, chosen in the page, redraw it
        // with that window and only 10 s epochs, without a reload.
        _ = try browser.evaluate("""
            (function () {
              const set = function (id, value) { const s = document.getElementById(id); s.value = value; s.dispatchEvent(new Event("change")); };
              set("live-last", "1h"); set("live-epoch", "10s");
            })()
            """, session: page)
        let chosen = try waitForPage(limit: 15) {
            $0.levels == 1 && $0.epochMs == 10_000 && $0.level == "10s" && $0.untilMs - $0.sinceMs == 3_600_000
        }
        #expect(chosen.marker, "the page reloaded: \(chosen)")
        #expect(chosen.search.contains("last=1h") && chosen.search.contains("epoch=10s"), "\(chosen.search)")
        #expect(chosen.panels == 2)
        // ...and it stays live at that epoch.
        let live = try waitForPage(limit: 10) { $0.updates > chosen.updates && $0.sent > chosen.sent }
        #expect(live.levels == 1 && live.epochMs == 10_000)

        // Its epochs are `pingem report --epoch 10s`'s for the same window,
        // once the recorder stopped and the page got its last probes.
        recorder.signal(SIGINT)
        #expect(recorder.wait(timeout: 15) == 0, "record: \(recorder.stderr)")
        let stoppedMs = realtimeNanoseconds() / 1_000_000
        let final = try waitForPage(limit: 10) { $0.generatedMs > stoppedMs + 1_500 }
        let report = runCommand([pingemBinary, "report", "--db", db, "--since", iso(final.sinceMs * 1_000_000),
                                 "--until", iso(final.untilMs * 1_000_000), "--epoch", "10s", "--target", "router",
                                 "--format", "json"])
        #expect(report.status == 0, "\(report.stderr)")
        let decoded = try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any]
        let epochs = ((decoded?["targets"] as? [[String: Any]])?.first?["epochs"] as? [[String: Any]]) ?? []
        #expect(epochs.map { $0["sent"] as? Int ?? -1 } == final.sentColumn, "report \(epochs.map { $0["sent"] ?? "-" })")
        #expect(epochs.map { $0["lost"] as? Int ?? -1 } == final.lostColumn)
        #expect(final.sentColumn.contains { $0 > 0 }, "\(final.sentColumn)")
        #expect(final.sent == final.sentColumn.reduce(0, +))

        let shot = try browser.send("Page.captureScreenshot", ["format": "png"], session: page)
        let png = try #require(Data(base64Encoded: shot["data"] as? String ?? ""))
        let shotPath = folder.appendingPathComponent("live-page.png").path
        try png.write(to: URL(fileURLWithPath: shotPath))
        print("live page screenshot: \(shotPath)")

        // Nothing went wrong in the page: no console error, no uncaught
        // exception, no CSP violation (Chromium logs those as errors).
        #expect(live.errors.isEmpty, "\(live.errors)")
        // (The events do arrive: Runtime.enable announces the page's context.)
        #expect(browser.events.contains { $0.method == "Runtime.executionContextCreated" })
        let problems = browser.pageProblems
        #expect(problems.isEmpty, "\(problems.map { "\($0.method) \($0.params)" })")

        _ = try responder.stop()
    }
}
