// serve's finer zoom on long windows: /level answers one level of the page's
// data, and /probes its single probes, for a range of the window, each equal
// to what `pingem export html` of that range embeds (in summarized hours and
// at the raw tail); a range too long or too fine is refused with one
// sentence. (Zooming the page in Chromium: EndToEndTests/LevelZoomTests.swift.)
import Foundation
import Store
import Testing
import TestSupport

/// The data block of an exported page.
private func exportedData(_ db: String, since: Int64, until: Int64) throws -> [String: Any] {
    let page = try run(pingemBinary, ["export", "html", "--db", db, "--since", iso(since), "--until", iso(until), "-o", "-"])
    #expect(page.status == 0, "\(page.stderr)")
    let open = "<script type=\"application/json\" id=\"data\">"
    let html = page.stdout
    let begin = try #require(html.range(of: open))
    let end = try #require(html.range(of: "</script>", range: begin.upperBound..<html.endIndex))
    return try #require(JSONSerialization.jsonObject(with: Data(html[begin.upperBound..<end.lowerBound].utf8)) as? [String: Any])
}

private func parsed(_ body: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(body.utf8))
}

private func msText(_ ns: Int64) -> String { String(ns / 1_000_000) }

@Suite(.serialized) struct LevelEndpointTests {
    @Test func aLevelIsTheExportsLevelOfThatRangeInSummarizedHoursAndAtTheRawTail() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let history = try LongHistory(at: dir.appendingPathComponent("l.db").path, start: start)
        let serve = try RunningServe(db: history.path)
        defer { serve.stop() }
        let page = "since=\(iso(history.since))&until=\(iso(history.until))"
        let (status, whole) = try get("\(serve.url)/level?\(page)&epoch=1h")
        // The page's own query names its window; /level's since and until are the range.
        #expect(status == 400 && whole.hasPrefix("pingem: Give the range as since=<Unix ms>&until=<Unix ms>"), "\(whole)")
        let minute = 60 * second, hour = 60 * minute
        let ranges: [(String, Int64, Int64)] = [
            ("summarized hours", history.dense + 30 * minute, history.dense + 90 * minute),
            ("the raw tail", history.dense + 2 * hour, history.until),
            ("the sparse start, from the window's own start", history.since, history.since + 5 * hour),
        ]
        for (name, since, until) in ranges {
            let (status, body) = try get("\(serve.url)/level?since=\(msText(since))&until=\(msText(until))&epoch=1m")
            try #require(status == 200, "\(name): \(body)")
            let exported = try exportedData(history.path, since: since, until: until)
            let levels = try #require(exported["levels"] as? [[String: Any]])
            let level = try #require(levels.first { $0["epoch_ms"] as? Int == 60_000 })
            let fetched = try #require(try parsed(body) as? [String: Any])
            #expect(NSDictionary(dictionary: fetched).isEqual(to: level), "\(name): /level differs from the export's 1-minute level")
            #expect(((fetched["bounds_ms"] as? [Int])?.count ?? 0) >= Int((until - since) / minute) + 1, "\(name)")
        }
        // Single probes of ten minutes at the raw tail and in summarized hours: the export's.
        for since in [history.dense + 2 * hour + 10 * minute, history.dense + 40 * minute] {
            let until = since + 10 * minute
            let (status, body) = try get("\(serve.url)/probes?since=\(msText(since))&until=\(msText(until))")
            try #require(status == 200, "\(body)")
            let exported = try exportedData(history.path, since: since, until: until)
            let fetched = try #require(try parsed(body) as? [[String: Any]])
            #expect(NSArray(array: fetched).isEqual(to: try #require(exported["probes"] as? [Any])))
            #expect((fetched.first?["outcome"] as? [Int])?.count == 600)
        }
        // The page's target selection holds for a level as for /events.
        let (_, one) = try get("\(serve.url)/level?since=\(msText(history.dense))&until=\(msText(history.dense + hour))&epoch=5m&target=b")
        #expect(((try parsed(one) as? [String: Any])?["targets"] as? [Any])?.count == 1, "\(one)")
    }

    @Test func aRangeTooLongOrTooFineIsRefusedWithOneSentence() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let history = try LongHistory(at: dir.appendingPathComponent("r.db").path, start: start)
        let serve = try RunningServe(db: history.path)
        defer { serve.stop() }
        let hour = 3600 * second, a = history.dense
        let refused: [(String, String)] = [
            ("/level?since=\(msText(a - 4 * hour))&until=\(msText(a + 3 * hour))&epoch=1m",
             "pingem: Epochs under 1h are read from raw probes, for at most 6 hours of the window: zoom in further or choose an epoch of 1h or more.\n"),
            ("/level?since=\(msText(a))&until=\(msText(a + hour))&epoch=1s",
             "pingem: An epoch of 1s cuts this range into 3600 epochs, more than 2000: zoom in further or choose a coarser epoch.\n"),
            ("/level?since=\(msText(history.since))&until=\(msText(history.until))&epoch=1m",
             "pingem: An epoch of 1m cuts this range into \((history.until - history.since) / (60 * second)) epochs, more than 2000: zoom in further or choose a coarser epoch.\n"),
            ("/probes?since=\(msText(a - 4 * hour))&until=\(msText(a + 3 * hour))",
             "pingem: Single probes are given for at most 6 hours of the window: zoom in further.\n"),
            ("/level?since=\(msText(a))&until=\(msText(a + hour))&epoch=soon",
             "pingem: Give the level's epoch as epoch=<width> (1m, 5m, 1h...).\n"),
            ("/probes?since=\(msText(a + hour))&until=\(msText(a))",
             "pingem: Give the range as since=<Unix ms>&until=<Unix ms>, since before until.\n"),
        ]
        for (path, sentence) in refused {
            let (status, body) = try get(serve.url + path)
            #expect(status == 400, "\(path)")
            #expect(body == sentence, "\(path)")
        }
        // An hourly level of the whole window is not refused: it is read from summaries.
        let (status, body) = try get("\(serve.url)/level?since=\(msText(history.since))&until=\(msText(history.until))&epoch=1h")
        #expect(status == 200, "\(body)")
    }

    /// Issue 13: a fetched level carries its hop strip, exactly as the
    /// export of that range embeds it (TestSupport's PathHistory).
    @Test func aFetchedLevelCarriesItsHopCells() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let history = try PathHistory(at: dir.appendingPathComponent("p.db").path, start: start)
        let serve = try RunningServe(db: history.path)
        defer { serve.stop() }
        let since = history.since + 240 * second, until = history.until
        let (status, body) = try get("\(serve.url)/level?since=\(msText(since))&until=\(msText(until))&epoch=10s")
        try #require(status == 200, "\(body)")
        let fetched = try #require(try parsed(body) as? [String: Any])
        let cells = try #require((fetched["targets"] as? [[String: Any]])?.first?["path"] as? [String])
        // A round per epoch: rounds 24 to 59.
        #expect(cells == (24..<60).map { i in
            switch i {
            case 30, 32: "1/5 3:1:0:1 4:1:0:1 5:1:0:1 t:1:0:1"
            case 31: "1/5 2:1:0:1 3:1:0:1 4:1:0:1 5:1:0:1 t:1:0:1"
            default: i % 2 == 0 ? "1/5 2:1:0:0" : "1/5"
            }
        })
        let exported = try exportedData(history.path, since: since, until: until)
        let level = try #require((exported["levels"] as? [[String: Any]])?.first { $0["epoch_ms"] as? Int == 10_000 })
        #expect(NSDictionary(dictionary: fetched).isEqual(to: level))
    }
}
