// Headless Chromium loads the live page from pingem serve: the page's policy
// lets /live.js in and the page draws with no console line (no CSP
// violation, no JavaScript error). Watching updates arrive needs a browser
// kept open past the load event (--dump-dom dumps at load): that is
// EndToEndTests/LivePageTests.swift, which drives Chromium over the DevTools
// protocol while a real recorder probes the test responder.
import Foundation
import Testing
import TestSupport

@Suite(.serialized) struct LivePageBrowserTests {
    @Test func chromiumLoadsTheLivePageWithoutAnError() throws {
        let chromium = try requireChromium()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("b.db").path
        try writeSession(db, from: 0, to: 10, runID: 1)
        let serve = try RunningServe(db: db)
        defer { serve.stop() }
        let page = "\(serve.url)/?since=\(iso(start))&until=\(iso(start + 120 * second))"
        let browser = Process()
        browser.executableURL = URL(fileURLWithPath: chromium)
        browser.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             "--user-data-dir=" + dir.appendingPathComponent("profile").path,
                             "--window-size=1280,1000", "--enable-logging=stderr", "--v=0", "--dump-dom", page]
        let out = Pipe(), err = Pipe()
        browser.standardOutput = out
        browser.standardError = err
        try browser.run()
        let console = Collected(err.fileHandleForReading)
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        browser.waitUntilExit()
        #expect(text.contains("data-drawn=\"1\""), "\(text.suffix(2000))")
        #expect(text.contains("<pre id=\"errors\"></pre>"))
        #expect(text.components(separatedBy: "<section class=\"panel\"").count == 2)
        #expect(text.contains("<td>Probes sent</td><td>10</td>"))
        #expect(text.contains("<select id=\"live-last\" data-default=\"1h\">"))
        #expect(text.contains("<select id=\"live-epoch\">"))
        let lines = console.value.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(lines.isEmpty, "\(lines)")
    }
}
