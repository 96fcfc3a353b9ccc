// The export as a user runs it: the built binary, its errors and its file
// handling, then the page in headless Chromium.
import Foundation
import Store
import Testing
import TestSupport

func iso(_ ns: Int64) -> String {
    let f = ISO8601DateFormatter()
    return f.string(from: Date(timeIntervalSince1970: Double(ns) / 1e9))
}

/// The history of ExportTests in a fresh folder; the window covers it all.
func historyFolder() throws -> (URL, String, [String]) {
    let dir = try temporaryDirectory()
    let db = dir.appendingPathComponent("h.db").path
    try makeHistory(at: db)
    let window = ["--since", iso(historyStart - 300 * second), "--until", iso(historyStart + 2700 * second)]
    return (dir, db, window)
}

@Suite struct ExportCLITests {
    @Test func writesTheDefaultNameAndStdoutAndStaysQuietWithoutATerminal() throws {
        let (dir, db, window) = try historyFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try run(pingemBinary, ["export", "html", "--db", db] + window, in: dir)
        #expect(r.status == 0)
        #expect(r.stderr.isEmpty && r.stdout.isEmpty)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".html") }
        #expect(files.count == 1 && files[0].hasPrefix("pingem-") && files[0].contains("Z-"))
        let toStdout = try run(pingemBinary, ["export", "html", "--db", db, "-o", "-"] + window)
        #expect(toStdout.status == 0)
        let file = try String(contentsOfFile: dir.appendingPathComponent(files[0]).path, encoding: .utf8)
        // Same data; only the generation time may differ.
        #expect(toStdout.stdout.hasPrefix("<!DOCTYPE html>"))
        #expect(toStdout.stdout.count == file.count)
        // The per-target figures agree with pingem report --format json.
        let report = try run(pingemBinary, ["report", "--db", db, "--format", "json", "--epoch", "1m"] + window)
        let json = try #require(JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])
        let reportSent = (json["targets"] as? [[String: Any]])?.compactMap { ($0["summary"] as? [String: Any])?["sent"] as? Int }
        let page = try embeddedData(file)
        let pageSent = (page["targets"] as? [[String: Any]])?.compactMap { ($0["summary"] as? [String: Any])?["sent"] as? Int }
        #expect(reportSent == pageSent && reportSent?.isEmpty == false)
    }

    @Test func badOptionsGetTheReportsErrorsAndLeaveTheFileAlone() throws {
        let (dir, db, window) = try historyFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("page.html").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: out))
        for (arguments, fragment) in [
            (["--timeout", "soon"], "soon"),
            (["--target", "nope"], "Unknown target \"nope\""),
            (["--outage-min", "0"], "--outage-min"),
        ] {
            let e = try run(pingemBinary, ["export", "html", "--db", db, "-o", out] + window + arguments)
            let r = try run(pingemBinary, ["report", "--db", db] + window + arguments)
            #expect(e.status == 64, "\(arguments)")
            #expect(e.stderr.contains(fragment), "\(e.stderr)")
            // The same sentence as report's (the usage line after it lists each command's own options).
            #expect(e.stderr.split(separator: "\n").first == r.stderr.split(separator: "\n").first, "\(arguments)")
            #expect(try String(contentsOfFile: out, encoding: .utf8) == "old")
        }
        // A successful export replaces the file and leaves no temporary behind.
        let ok = try run(pingemBinary, ["export", "html", "--db", db, "-o", out, "--target", "router"] + window)
        #expect(ok.status == 0)
        #expect(try String(contentsOfFile: out, encoding: .utf8).hasPrefix("<!DOCTYPE html>"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".tmp") }.isEmpty)
        // A folder that does not exist: one sentence, exit 1.
        let bad = try run(pingemBinary, ["export", "html", "--db", db, "-o", dir.path + "/missing/page.html"] + window)
        #expect(bad.status == 1)
        #expect(bad.stderr.hasPrefix("pingem: Cannot write in "))
    }
}

@Suite struct ExportBrowserTests {
    @Test func chromiumDrawsEveryPanelWithoutAJavaScriptError() throws {
        let chromium = try requireChromium()
        let (dir, db, window) = try historyFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let page = dir.appendingPathComponent("page.html").path
        #expect(try run(pingemBinary, ["export", "html", "--db", db, "-o", page] + window).status == 0)
        let browser = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                       "--user-data-dir=" + dir.appendingPathComponent("profile").path,
                       "--window-size=1280,1000", "--virtual-time-budget=5000"]
        let loaded = try run(chromium, browser + ["--enable-logging=stderr", "--v=0", "--dump-dom", "file://" + page])
        let dom = loaded.stdout
        // The page logs nothing itself: any console line is an error or a CSP
        // violation (a wrong script or style hash, a blocked request).
        let console = loaded.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(console.isEmpty, "\(console)")
        // The script ran to its end and caught no error.
        #expect(dom.contains("data-drawn=\"1\""))
        #expect(dom.contains("<pre id=\"errors\"></pre>"), "\(dom.components(separatedBy: "<pre id=\"errors\">").last?.prefix(400) ?? "")")
        // One panel per target, names as text: the hostile label is escaped, never an element.
        #expect(dom.components(separatedBy: "<section class=\"panel\"").count == 3)
        #expect(dom.contains("<h2 class=\"target-name\">router"))
        #expect(dom.contains("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"))
        #expect(!dom.contains("<img"))
        // Labels a reader needs without hovering.
        for label in ["Loss", "Probes sent", "RTT p99", "Jitter", "Outages", "no data: recorder not running", "Times in local time"] {
            #expect(dom.contains(label), "\(label)")
        }
        // The whole 50-minute window draws 10 s epochs; ten minutes of it, single
        // probes: zooming re-bins from the embedded levels.
        #expect(dom.contains("data-level=\"10s\""))
        let from = (historyStart + 300 * second) / 1_000_000, to = (historyStart + 900 * second) / 1_000_000
        let zoomed = try run(chromium, browser + ["--dump-dom", "file://" + page + "#from=\(from)&to=\(to)"]).stdout
        #expect(zoomed.contains("data-level=\"probes\""))
        #expect(zoomed.contains("<pre id=\"errors\"></pre>"))
        #expect(zoomed.contains("<span id=\"view\">Showing "))
        // Hover: the tooltip of one 10 s epoch says what the report says of it.
        let at = historyStart + 605 * second
        let hover = try run(chromium, browser + ["--dump-dom", "file://" + page + "#hover=\(at / 1_000_000)"]).stdout
        let report = try run(pingemBinary, ["report", "--db", db, "--format", "json", "--target", "router", "--epoch", "10s",
                                            "--since", iso(historyStart + 600 * second), "--until", iso(historyStart + 610 * second)])
        let json = try #require(JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])
        let epoch = try #require(((json["targets"] as? [[String: Any]])?.first?["epochs"] as? [[String: Any]])?.first)
        let sent = try #require(epoch["sent"] as? Int), lost = try #require(epoch["lost"] as? Int)
        #expect(lost > 0)  // the outage of "router" starts here
        let tip = hover.components(separatedBy: "<div id=\"tip\"").last?.components(separatedBy: "</div>").first ?? ""
        #expect(tip.contains(">router\n") && !tip.contains("hidden"), "\(tip)")
        #expect(tip.contains("sent \(sent), lost \(lost) ("), "\(tip)")
        #expect(tip.contains("p50 ") && tip.contains("p99 "), "\(tip)")
        let shot = dir.appendingPathComponent("page.png").path
        _ = try run(chromium, browser + ["--screenshot=" + shot, "file://" + page])
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        #expect(png.count > 10_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        if let keep = ProcessInfo.processInfo.environment["PINGEM_SCREENSHOT_DIR"] {
            try? png.write(to: URL(fileURLWithPath: keep).appendingPathComponent("export-test.png"))
        }
    }
}

extension ExportBrowserTests {
    /// A real recording on loopback (the kernel answers 127.0.0.1 and ::1
    /// itself), one target under the hostile label, exported and drawn.
    @Test(.requiresRoot("recording (a raw socket here)"))
    func chromiumDrawsARealLoopbackRecording() throws {
        let chromium = try requireChromium()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("r.db").path
        let p = try startPingem(["record", "127.0.0.1", hostileLabel + "=::1", "--interval", "50ms", "--db", db])
        Thread.sleep(forTimeInterval: 1.5)
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let page = dir.appendingPathComponent("real.html").path
        let export = try run(pingemBinary, ["export", "html", "--db", db, "--last", "10m", "-o", page])
        #expect(export.status == 0, "\(export.stderr)")
        let data = try embeddedData(try String(contentsOfFile: page, encoding: .utf8))
        let names = (data["targets"] as? [[String: Any]])?.compactMap { $0["target"] as? String }
        #expect(names == ["127.0.0.1", hostileLabel])
        let loaded = try run(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                                        "--user-data-dir=" + dir.appendingPathComponent("profile").path,
                                        "--window-size=1280,1000", "--dump-dom", "file://" + page])
        #expect(loaded.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }.isEmpty)
        #expect(loaded.stdout.contains("data-drawn=\"1\"") && loaded.stdout.contains("<pre id=\"errors\"></pre>"))
        #expect(loaded.stdout.components(separatedBy: "<section class=\"panel\"").count == 3)
        #expect(loaded.stdout.contains("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"))
        #expect(!loaded.stdout.contains("<img"))
    }
}

extension ExportBrowserTests {
    /// A page of eight days read from hourly summaries: it draws, says its
    /// percentiles are the summaries', and zoom and hover show the report's
    /// numbers for the hour.
    @Test func chromiumDrawsASummarizedPageWithTheReportsNumbers() throws {
        let chromium = try requireChromium()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("s.db").path
        let options = try summarizedHistory(at: db)
        let window = ["--since", iso(options.since), "--until", iso(options.until)]
        let page = dir.appendingPathComponent("page.html").path
        let export = try run(pingemBinary, ["export", "html", "--db", db, "-o", page] + window)
        #expect(export.status == 0, "\(export.stderr)")
        #expect(try embeddedData(try String(contentsOfFile: page, encoding: .utf8))["percentiles"] as? String == "approximate")
        let browser = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                       "--user-data-dir=" + dir.appendingPathComponent("profile").path,
                       "--window-size=1280,1000", "--virtual-time-budget=5000"]
        let loaded = try run(chromium, browser + ["--enable-logging=stderr", "--v=0", "--dump-dom", "file://" + page])
        #expect(loaded.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }.isEmpty)
        #expect(loaded.stdout.contains("data-drawn=\"1\"") && loaded.stdout.contains("<pre id=\"errors\"></pre>"))
        #expect(loaded.stdout.contains("Percentiles of whole hours come from hourly summaries (within 1 %)"))
        // Zoomed to six hours around the history: hourly epochs; hover on its first hour.
        let from = (historyStart - 3600 * second) / 1_000_000, to = (historyStart + 5 * 3600 * second) / 1_000_000
        let at = (historyStart + 605 * second) / 1_000_000
        let hover = try run(chromium, browser + ["--dump-dom", "file://" + page + "#from=\(from)&to=\(to)&hover=\(at)"]).stdout
        #expect(hover.contains("data-level=\"3600s\""))
        #expect(hover.contains("<pre id=\"errors\"></pre>"))
        let report = try run(pingemBinary, ["report", "--db", db, "--format", "json", "--target", "router", "--epoch", "1h",
                                            "--since", iso(historyStart), "--until", iso(historyStart + 3600 * second)])
        let json = try #require(JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])
        let epoch = try #require(((json["targets"] as? [[String: Any]])?.first?["epochs"] as? [[String: Any]])?.first)
        let sent = try #require(epoch["sent"] as? Int), lost = try #require(epoch["lost"] as? Int)
        let rtt = try #require(epoch["rtt_ms"] as? [String: Any])
        let tip = hover.components(separatedBy: "<div id=\"tip\"").last?.components(separatedBy: "</div>").first ?? ""
        #expect(tip.contains(">router\n") && !tip.contains("hidden"), "\(tip)")
        #expect(sent > 1000 && tip.contains("sent \(sent), lost \(lost) ("), "\(tip)")
        #expect(tip.contains("p50 ") && tip.contains("percentiles from hourly summaries (within 1 %)"), "\(tip)")
        #expect(rtt["p50"] is NSNumber)
    }
}
