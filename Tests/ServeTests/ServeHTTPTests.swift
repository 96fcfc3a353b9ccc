// The served binary over HTTP: the listen refusal, /metrics, and the event
// stream delivering new epochs as rows are written (to a database that did
// not exist when serve started, across two recorder sessions).
import Foundation
import Testing
import TestSupport

/// The finest level's `sent` column of the first target in one data event.
func sentColumn(_ json: Substring) throws -> [Int] {
    let object = try #require(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    let levels = try #require(object["levels"] as? [[String: Any]])
    let targets = try #require(levels.first?["targets"] as? [[String: Any]])
    return try #require(targets.first?["sent"] as? [Int])
}

/// The data lines of every "data" event so far.
func dataEvents(_ stream: String) -> [Substring] {
    stream.components(separatedBy: "\n\n").compactMap { frame -> Substring? in
        let lines = frame.split(separator: "\n")
        guard lines.first == "event: data" else { return nil }
        return Substring(lines.dropFirst().map { $0.dropFirst("data: ".count) }.joined(separator: "\n"))
    }
}

@Suite(.serialized) struct ServeHTTPTests {
    @Test func aWildcardIsRefusedAndANamedAddressWarns() throws {
        let refused = try pingem(["serve", "--listen", "0.0.0.0:8000", "--db", "/nonexistent/x.db"])
        #expect(refused.status == 64)
        #expect(refused.stderr.contains("every network"), "\(refused.stderr)")
        // 192.0.2.1 (TEST-NET-1) is named, so allowed with a warning; this
        // machine does not have it, so the bind then fails.
        let named = try pingem(["serve", "--listen", "192.0.2.1:\(try freePort())", "--db", "/nonexistent/x.db"])
        #expect(named.stderr.hasPrefix("pingem: warning: the page on 192.0.2.1:"), "\(named.stderr)")
        #expect(named.stderr.contains("no authentication"))
        #expect(named.status != 0)
    }

    @Test func eventsDeliverNewEpochsAcrossRecorderSessions() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("live.db").path
        let serve = try RunningServe(db: db)  // before the database exists
        defer { serve.stop() }
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        let window = "since=\(iso(start))&until=\(iso(start + 120 * second))"
        curl.arguments = ["-sN", "\(serve.url)/events?\(window)"]
        let out = Pipe()
        curl.standardOutput = out
        try curl.run()
        defer { kill(curl.processIdentifier, SIGKILL); curl.waitUntilExit() }
        let stream = Collected(out.fileHandleForReading)
        #expect(stream.wait { $0.contains("event: status") }, "\(stream.value)")

        try writeSession(db, from: 0, to: 10, runID: 1)
        #expect(stream.wait { dataEvents($0).count == 1 }, "\(stream.value)")
        let first = try sentColumn(try #require(dataEvents(stream.value).first))
        #expect(first.count == 120)  // 1 s epochs over the 2-minute window
        #expect(first[5] == 1 && first[65] == 0)

        // A second recorder session, later in the window.
        try writeSession(db, from: 60, to: 70, runID: 2)
        #expect(stream.wait { dataEvents($0).count == 2 }, "\(stream.value)")
        let later = try sentColumn(dataEvents(stream.value)[1])
        #expect(later[5] == 1 && later[65] == 1 && later[75] == 0)

        // /metrics over HTTP: every probe of both sessions, once.
        let (status, body) = try get("\(serve.url)/metrics")
        #expect(status == 200)
        let m = try parseExposition(body)
        let labels = #"host="198.18.0.1",ip="198.18.0.1",source="",tos="0""#
        #expect(m["smokeping_requests_total{\(labels)}"] == 20, "\(body)")
        #expect(m["smokeping_response_duration_seconds_bucket{\(labels),le=\"0.0128\"}"] == 20)
        #expect(m["pingem_session_start_time_seconds"] == Double(start / second + 60))
    }

    @Test func thePageIsTheExportPageWithTheLiveScript() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("page.db").path
        try writeSession(db, from: 0, to: 10, runID: 1)
        let serve = try RunningServe(db: db, extra: ["--last", "6h"])
        defer { serve.stop() }
        let (status, page) = try get("\(serve.url)/?since=\(iso(start))&until=\(iso(start + 60 * second))")
        #expect(status == 200)
        #expect(page.contains("<script src=\"/live.js\"></script>"))
        // The window control shows serve's --last when the URL names none.
        #expect(page.contains("<select id=\"live-last\" data-default=\"6h\">"))
        #expect(page.contains("<select id=\"live-epoch\"><option>auto</option>"))
        #expect(page.contains("connect-src 'self'") && page.contains("script-src 'self' 'sha256-"))
        #expect(page.contains("<h1 id=\"title\">pingem: "))
        let (badStatus, bad) = try get("\(serve.url)/?last=soon")
        #expect(badStatus == 400 && bad.contains("not a duration"))
        let (scriptStatus, script) = try get("\(serve.url)/live.js")
        #expect(scriptStatus == 200 && script.contains("new EventSource(\"/events\""))
    }
}
