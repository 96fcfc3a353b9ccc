// `pingem serve`: the export page, live, and /metrics. Read-only on the
// database and stateless towards the recorder: every request (and every tick
// of an event stream) opens the database afresh, so serve survives recorder
// restarts and a database that appears after it started.
import Foundation
import Hummingbird
import Reports
import Store
import Synchronization

public struct ServeConfiguration: Sendable {
    public var databasePath: String
    public var listen: ListenAddress
    /// The page's window when the URL names none.
    public var defaultLast: String
    /// Loss timeout for the page's default and for /metrics.
    public var timeoutNs: Nanoseconds
    /// Time between two checks of the database by an open event stream.
    public var tick: Duration
    public init(databasePath: String, listen: ListenAddress = .default, defaultLast: String = "1h",
                timeoutNs: Nanoseconds = 2_000_000_000, tick: Duration = .milliseconds(500)) {
        self.databasePath = databasePath; self.listen = listen; self.defaultLast = defaultLast
        self.timeoutNs = timeoutNs; self.tick = tick
    }
}

/// /metrics totals behind a lock: scrapes may come concurrently.
public final class MetricsService: Sendable {
    let databasePath: String
    let state: Mutex<MetricsState>
    public init(databasePath: String, timeoutNs: Nanoseconds) {
        self.databasePath = databasePath
        self.state = Mutex(MetricsState(timeoutNs: timeoutNs))
    }

    /// Brings the totals up to `now` and renders them. A database that does
    /// not exist (yet) or cannot be read leaves the totals as they are.
    public func scrape(now: Nanoseconds) -> String {
        state.withLock { state in
            if let db = try? Database(path: databasePath, mode: .readOnly) {
                try? state.advance(db: db, now: now)
            }
            return state.render(now: now)
        }
    }
}

/// What a page or event stream shows, from its URL's query parameters
/// (last, since, until, timeout, epoch, outage-min, target).
public struct LiveQuery: Sendable, Hashable {
    public var last: String?
    public var since: String?
    public var until: String?
    public var timeout: String?
    /// The epoch width chosen in the page; nil (or "auto") lets the page
    /// pick embedded widths by zoom, as the export does.
    public var epoch: String?
    public var outageMin: Int?
    public var targets: [String] = []

    public init(last: String? = nil, since: String? = nil, until: String? = nil,
                timeout: String? = nil, epoch: String? = nil, outageMin: Int? = nil, targets: [String] = []) {
        self.last = last; self.since = since; self.until = until
        self.timeout = timeout; self.epoch = epoch; self.outageMin = outageMin; self.targets = targets
    }

    init(_ request: Request) {
        let q = request.uri.queryParameters
        func value(_ name: String) -> String? { q[Substring(name)].map { String($0) }.flatMap { $0.isEmpty ? nil : $0 } }
        last = value("last"); since = value("since"); until = value("until"); timeout = value("timeout")
        epoch = value("epoch").flatMap { $0 == "auto" ? nil : $0 }
        outageMin = value("outage-min").flatMap { Int($0) }
        targets = q.getAll("target").map { String($0) }.filter { !$0.isEmpty }
    }

    func reportOptions(now: Nanoseconds, configuration: ServeConfiguration) throws -> ReportOptions {
        let window = try resolveWindow(
            last: last ?? (since == nil ? configuration.defaultLast : nil), since: since, until: until,
            now: now, timeZone: .current)
        let timeoutNs = try timeout.map(parseDuration) ?? configuration.timeoutNs
        let outage = outageMin ?? 3
        guard outage >= 1 else { throw ReportError("outage-min must be 1 or more.") }
        // Epochs follow the server's local calendar, as pingem report's do.
        return ReportOptions(since: window.since, until: window.until, epochNs: nil,
                             timeoutNs: timeoutNs, outageMin: outage, targets: targets, timeZone: .current)
    }

    /// The page's options: the report's, plus the chosen epoch width.
    func exportOptions(now: Nanoseconds, configuration: ServeConfiguration) throws -> ExportOptions {
        let report = try reportOptions(now: now, configuration: configuration)
        guard let epoch else { return ExportOptions(report: report, generatedNs: now) }
        let width = try parseDuration(epoch)
        // The export's own bound on one level's size (a week at 1 minute).
        let limit: Int64 = 12_000
        if (report.until - report.since) / width > limit {
            throw ReportError("An epoch of \(epoch) cuts this window into more than \(limit) epochs: choose a longer epoch or a shorter window.")
        }
        return ExportOptions(report: report, generatedNs: now, chosenEpochNs: width)
    }
}

/// The export page's data (JSON) for `query` at `now`, read and computed
/// afresh: what `pingem export html` embeds for the same window (hourly
/// summaries where it reads them). The live page's feeds give the same
/// text, keeping the epochs that can no longer change (LiveFeed.swift).
public func liveData(_ query: LiveQuery, configuration: ServeConfiguration, now: Nanoseconds) throws -> String {
    let options = try query.exportOptions(now: now, configuration: configuration)
    let db = try Database(path: configuration.databasePath, mode: .readOnly)
    return try exportData(try exportInput(from: db, options, exact: false), options)
}

func wallClockNs() -> Nanoseconds {
    var t = timespec()
    clock_gettime(CLOCK_REALTIME, &t)
    return Nanoseconds(t.tv_sec) * 1_000_000_000 + Nanoseconds(t.tv_nsec)
}

/// The router: `/`, `/live.js`, `/events`, `/level`, `/probes`, `/metrics`.
public func makeRouter(_ configuration: ServeConfiguration, metrics: MetricsService,
                       feeds: LiveFeeds? = nil) -> Router<BasicRequestContext> {
    let router = Router()
    let feeds = feeds ?? LiveFeeds(configuration)
    router.get("/") { request, _ -> Response in
        do {
            let frame = try await feeds.frame(LiveQuery(request))
            let page = livePage(exportHTML(data: frame.data, frame.options), defaultLast: configuration.defaultLast)
            return text(page, type: "text/html; charset=utf-8")
        } catch let error as ReportError {
            return text("pingem: \(error)\n", status: .badRequest)
        } catch {
            return text("pingem: \(error)\nThe page reloads itself when the database can be read.\n",
                        status: .serviceUnavailable, extra: [.init("Refresh")!: "2"])
        }
    }
    router.get("/live.js") { _, _ -> Response in
        text(liveScript, type: "text/javascript; charset=utf-8")
    }
    // Finer epochs and single probes of a range, for the live page's zoom
    // into a long window (LevelEndpoint.swift).
    for (path, probes) in [("/level", false), ("/probes", true)] {
        router.get(RouterPath(path)) { request, _ -> Response in
            let (status, body) = await levelResponse(LevelRequest(request, probes: probes), configuration: configuration)
            return text(body, type: status == .ok ? "application/json" : "text/plain; charset=utf-8", status: status)
        }
    }
    router.get("/metrics") { _, _ -> Response in
        text(metrics.scrape(now: wallClockNs()), type: "text/plain; version=0.0.4; charset=utf-8")
    }
    router.get("/events") { request, _ -> Response in
        let query = LiveQuery(request)
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            // A client that goes away makes a write throw, which ends this loop.
            var last: String?
            var quiet = 0
            try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
            while !Task.isCancelled {
                var frame: String?
                do {
                    let data = try await feeds.frame(query).data
                    // Only news is sent: the same figures made a moment later
                    // differ only in when they were made.
                    let figures = withoutGeneratedTime(data)
                    if figures != last { frame = sseFrame(event: "data", data); last = figures }
                } catch let error as ReportError {
                    frame = sseFrame(event: "status", "\(error)")
                    last = nil
                } catch {
                    frame = sseFrame(event: "status", "waiting for the database: \(error)")
                    last = nil
                }
                if let frame {
                    try await writer.write(ByteBuffer(string: frame)); quiet = 0
                } else {
                    quiet += 1
                    if quiet >= 30 { try await writer.write(ByteBuffer(string: ": keepalive\n\n")); quiet = 0 }
                }
                try await Task.sleep(for: configuration.tick)
            }
            try await writer.finish(nil)
        })
    }
    return router
}

/// The page data without its "generated_ms" field. The standard library's
/// search, not Foundation's: a month's data is half a megabyte, twice a second.
func withoutGeneratedTime(_ data: String) -> String {
    guard let field = data.firstRange(of: "\"generated_ms\":"),
          let comma = data[field.upperBound...].firstIndex(of: ",") else { return data }
    return String(data[..<field.lowerBound] + data[data.index(after: comma)...])
}

/// One Server-Sent Event; each line of `data` becomes a data: line. The
/// page's data is one line (splitting half a megabyte each tick was an
/// eighth of a tick's cost).
func sseFrame(event: String, _ data: String) -> String {
    if !data.utf8.contains(UInt8(ascii: "\n")) { return "event: \(event)\ndata: " + data + "\n\n" }
    return "event: \(event)\n" + data.split(separator: "\n", omittingEmptySubsequences: false).map { "data: \($0)\n" }.joined() + "\n"
}

private func text(_ body: String, type: String = "text/plain; charset=utf-8", status: HTTPResponse.Status = .ok,
                  extra: HTTPFields = [:]) -> Response {
    var headers = extra
    headers[.contentType] = type
    headers[.cacheControl] = "no-store"
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
}

/// The application; `onRunning` learns the bound port (port 0 in tests).
public func makeApplication(_ configuration: ServeConfiguration, feeds: LiveFeeds? = nil,
                            onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
    let metrics = MetricsService(databasePath: configuration.databasePath, timeoutNs: configuration.timeoutNs)
    // The totals are built while the server already listens: a scrape that
    // comes meanwhile waits for them (from summaries, about a second for a
    // year of 10 targets) rather than the server for its whole start.
    DispatchQueue.global().async { _ = metrics.scrape(now: wallClockNs()) }
    return Application(
        router: makeRouter(configuration, metrics: metrics, feeds: feeds),
        configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port),
                             serverName: "pingem"),
        onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.listen.port) })
}
