// The live page's kept epochs: a page made with them is the page made from
// scratch, byte for byte, while a writer keeps appending (late replies for
// recent probes included), and event streams of one query share one
// computation per tick.
import Foundation
import Reports
@testable import Serve
import Store
import Synchronization
import Testing
import TestSupport

/// A recorder's writes, step by step: targets "a" and "b" probed every
/// `interval`; every 7th probe of "b" unanswered at first, and answered
/// `lateAfter` later in a batch of its own (a late reply, as the recorder
/// writes one that arrives after the probe's batch was cut), every 13th lost.
/// "a" loses 5 probes in a row every 600 (an outage), and has a path round
/// every 10th probe (so the page draws hop strips and where labels): hop 2
/// rate-limits in every third, the loss begins at hop 3 in every seventh
/// and in the outage's.
struct AppendingHistory {
    let db: Database
    let interval: Int64
    let session: Int64
    let targets: [Int64]
    var next: Int64
    var unanswered: [Int64] = []

    init(path: String, interval: Int64, from begin: Int64) throws {
        db = try Database(path: path, mode: .readWrite)
        self.interval = interval
        targets = [try db.target(name: "a", host: "198.18.0.1").id, try db.target(name: "b", host: "198.18.0.2").id]
        session = try db.beginTestSession(runID: 1, intervalNs: interval, startedNs: begin, targets: targets)
        next = begin
        var b = WriteBatch()
        b.addresses = targets.enumerated().map { AddressRecord(targetID: $1, sinceNs: begin, address: "198.18.0.\($0 + 1)") }
        b.heartbeatNs = begin
        try db.write(b, session: session)
    }

    /// Probes up to `until`, then the replies of probes unanswered for `lateAfter`.
    mutating func append(until: Int64, lateAfter: Int64) throws {
        var b = WriteBatch()
        var k = next / interval
        while next < until {
            let rtt = 10 * ms + (k % 17) * 300_000
            let outage = (300..<305).contains(k % 600)
            b.probes.append(ProbeRecord(sentNs: next, targetID: targets[0], rttNs: k % 13 == 0 || outage ? nil : rtt))
            if k % 10 == 0 {
                let round = k % 7 == 0 || outage ? "++--|-" : k % 3 == 0 ? "+-++|+" : "++++|+"
                b.pathProbes += pathProbeRecords([round], target: targets[0], from: next, targetAddress: "198.18.0.1")
            }
            if k % 7 == 0 {
                b.probes.append(ProbeRecord(sentNs: next, targetID: targets[1], rttNs: nil))
                unanswered.append(next)
            } else {
                b.probes.append(ProbeRecord(sentNs: next, targetID: targets[1], rttNs: rtt + ms))
            }
            next += interval; k += 1
        }
        // Half of them answered within the timeout (received), half after it (late).
        for sent in unanswered where sent <= until - lateAfter {
            let late = (sent / interval) % 2 == 0
            b.replies.append(ReplyRecord(sentNs: sent, targetID: targets[1], rttNs: late ? 3 * second : 1500 * ms))
        }
        unanswered.removeAll { $0 <= until - lateAfter }
        b.heartbeatNs = until
        try db.write(b, session: session)
    }
}

@Suite struct LiveCacheTests {
    @Test func keptEpochsGiveTheSamePageAsFromScratchWhileAWriterAppends() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("l.db").path
        var history = try AppendingHistory(path: path, interval: second, from: start)
        try history.append(until: start + 90 * 60 * second, lateAfter: 40 * second)
        let configuration = ServeConfiguration(databasePath: path)
        var cache = LivePageCache()
        // A two-minute margin: replies come 40 s late, inside it.
        let margin = 120 * second
        var reused = 0
        for step in 1...12 {
            let now = start + 90 * 60 * second + Int64(step) * 25 * second
            try history.append(until: now - 2 * second, lateAfter: 40 * second)
            let options = try LiveQuery(last: "1h").exportOptions(now: now, configuration: configuration)
            let input = try exportInput(from: try Database(path: path, mode: .readOnly), options, exact: false)
            let kept = try cache.data(input, options, stableMarginNs: margin)
            let fresh = try exportData(input, options)
            #expect(kept == fresh, "step \(step): the page made with kept epochs differs from the page made from scratch")
            #expect(fresh.contains("\"path\":[\"") && fresh.contains(" 3:1:0:1 4:1:0:1 t:1:0:1\""), "step \(step): no hop strip")
            #expect(fresh.contains(",\"where: hop 3, 198.18.3.1\"]"), "step \(step): no outage where")
            if step > 1 { reused += cache.kept > 0 && cache.madeEpochs < 2 * (3600 + 360 + 60) / 4 ? 1 : 0 }
        }
        // The epochs were kept (not all made again each tick): 1 s and 10 s levels.
        #expect(reused == 11)
        #expect(cache.kept > 2 * 3000)
    }

    @Test func keptEpochsOfASummarizedWindowGiveTheSamePage() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.db").path
        // Nine days at one probe a minute, summarized by the hour as the upkeep does.
        let minute = 60 * second
        var history = try AppendingHistory(path: path, interval: minute, from: start)
        let base = start + 9 * 86400 * second
        try history.append(until: base, lateAfter: 3 * minute)
        try summarize(path, before: base - 30 * minute)
        let configuration = ServeConfiguration(databasePath: path)
        var cache = LivePageCache()
        var keptSummaries = KeptSummaries()
        var approximate = 0
        for step in 1...8 {
            let now = base + Int64(step) * 20 * minute
            try history.append(until: now - 2 * second, lateAfter: 3 * minute)
            try summarize(path, before: now - 30 * minute)
            let options = try LiveQuery(last: "8d").exportOptions(now: now, configuration: configuration)
            #expect(exportUsesSummaries(options))
            // The summaries kept from earlier ticks (and those new since) are
            // what a load from scratch reads.
            let db = try Database(path: path, mode: .readOnly)
            let input = try exportInput(from: db, options, exact: false, kept: &keptSummaries)
            #expect(input == (try exportInput(from: db, options, exact: false)), "step \(step): kept summaries differ from a fresh read")
            let kept = try cache.data(input, options, stableMarginNs: liveStableMarginNs(options.report.timeoutNs))
            let fresh = try exportData(input, options)
            #expect(kept == fresh, "step \(step): the summarized page made with kept epochs differs from scratch")
            if fresh.contains("\"percentiles\":\"approximate\"") { approximate += 1 }
            // Of 192 hourly epochs per target, the kept ones are reused.
            if step > 1 { #expect(cache.madeEpochs < 2 * (9 + 192) / 2) }
        }
        #expect(approximate == 8)
        // The whole window's level took its runs of summarized path hours
        // from the tick before (8 days of them, each tick).
        #expect(cache.reusedPathRuns > 7 * 7)
    }

    @Test func streamsOfOneQueryShareOneComputationPerTick() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("n.db").path
        var history = try AppendingHistory(path: path, interval: second, from: start)
        try history.append(until: start + 600 * second, lateAfter: 40 * second)
        let configuration = ServeConfiguration(databasePath: path, listen: ListenAddress(host: "127.0.0.1", port: 0, isExposed: false),
                                               tick: .milliseconds(200))
        let feeds = LiveFeeds(configuration)
        let port = Mutex(0)
        let app = makeApplication(configuration, feeds: feeds) { bound in port.withLock { $0 = bound } }
        let server = Task { try await app.runService(gracefulShutdownSignals: []) }
        defer { server.cancel() }
        // Waited for without blocking: the server starts on the threads tasks share.
        let waited = ContinuousClock.now
        while port.withLock({ $0 }) == 0 && ContinuousClock.now - waited < .seconds(60) { try await Task.sleep(for: .milliseconds(50)) }
        try #require(port.withLock { $0 } != 0, "the server did not start")
        let url = "http://127.0.0.1:\(port.withLock { $0 })/events?since=\(iso(start))&until=\(iso(start + 900 * second))"

        let streams = 10, seconds = 4.0
        let began = Date()
        // Curl on threads of their own (Collected): the server's handlers
        // need the few threads Swift's tasks run on.
        let curls = try (0..<streams).map { _ in try startStream(url, seconds: seconds) }
        while curls.contains(where: { $0.process.isRunning }) { try await Task.sleep(for: .milliseconds(100)) }
        let bodies = curls.map(\.output.value)
        let elapsed = Date().timeIntervalSince(began)
        let ticks = elapsed / 0.2
        // Each stream's first data event is the same text.
        let firsts = Set(bodies.map { body in body.components(separatedBy: "\n\n").first { $0.hasPrefix("event: data") } ?? "" })
        #expect(firsts.count == 1 && firsts.first?.isEmpty == false, "\(bodies.map { $0.prefix(300) })")
        // One computation per tick for all ten (each on its own: ten per tick).
        #expect(feeds.computations >= 1)
        #expect(Double(feeds.computations) <= ticks * 1.5 + 3,
                "\(feeds.computations) computations in \(ticks) ticks of \(streams) streams")
    }
}

/// Hourly summaries of every hour ending by `before`, as the upkeep writes them.
private func summarize(_ path: String, before: Int64) throws {
    let db = try Database(path: path, mode: .readWrite)
    while try db.summarizeHours(endingBy: before, maxHours: 200) > 0 {}
}

/// An event stream read for `seconds` (curl ends it), its text collected.
private func startStream(_ url: String, seconds: Double) throws -> (process: Process, output: Collected) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    p.arguments = ["-sN", "--max-time", String(seconds), url]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    return (p, Collected(out.fileHandleForReading))
}
