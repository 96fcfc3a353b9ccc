// The live page's data, made once per tick for everyone who shows the same
// query: every event stream (and page load) of one query asks the same feed,
// which makes the data at most once per tick and hands each the same text.
// A feed keeps its query's epochs that can no longer change
// (Reports' LivePageCache), so a tick reads the database afresh, as serve
// always has, but computes only the recent epochs and the whole-window
// figures. Feeds are kept for the few queries asked most recently, so the
// kept epochs stay bounded: `limit` feeds of at most LivePageCache's
// maximumKept epochs each.
import Foundation
import Reports
import Store
import Synchronization

/// A query's data at one moment: the data block and the options it was
/// made for (the page's title needs its window).
struct LiveFrame: Sendable {
    var data: String
    var options: ExportOptions
}

/// What makes two requests show the same data: their query, in the zone
/// the server's epochs follow.
struct LiveKey: Hashable, Sendable {
    var query: LiveQuery
    var timeZone: String
}

final class LiveFeed: Sendable {
    /// Callers wait here in turn, not each on a thread of its own: ten
    /// streams blocked on one lock would hold ten of the few threads
    /// Dispatch starts on a small machine.
    let queue = DispatchQueue(label: "pingem.live-feed")
    struct State {
        var cache = LivePageCache()
        var summaries = KeptSummaries()
        var made: (at: ContinuousClock.Instant, frame: Result<LiveFrame, any Error>)?
    }
    let state = Mutex(State())
}

/// The feeds of the queries asked most recently.
public final class LiveFeeds: Sendable {
    let configuration: ServeConfiguration
    /// Most recently asked last.
    let feeds = Mutex<[(key: LiveKey, feed: LiveFeed)]>([])
    let limit: Int
    let madeCount = Atomic<Int>(0)
    /// Epochs the kept caches made afresh, over all computations.
    let madeEpochCount = Atomic<Int>(0)

    public init(_ configuration: ServeConfiguration, limit: Int = 4) {
        self.configuration = configuration; self.limit = limit
    }

    /// How many times a query's data was computed (not handed on).
    public var computations: Int { madeCount.load(ordering: .relaxed) }
    /// How many epochs those computations made (the others were kept).
    public var madeEpochs: Int { madeEpochCount.load(ordering: .relaxed) }

    private func feed(_ query: LiveQuery) -> LiveFeed {
        let key = LiveKey(query: query, timeZone: TimeZone.current.identifier)
        return feeds.withLock { feeds in
            if let i = feeds.firstIndex(where: { $0.key == key }) {
                let found = feeds.remove(at: i)
                feeds.append(found)
                return found.feed
            }
            let made = LiveFeed()
            feeds.append((key, made))
            if feeds.count > limit { feeds.removeFirst(feeds.count - limit) }
            return made
        }
    }

    /// The query's data: made less than a tick ago by anyone, or made now.
    private func frameNow(_ query: LiveQuery, _ feed: LiveFeed) throws -> LiveFrame {
        let clock = ContinuousClock()
        return try feed.state.withLock { state in
            if let made = state.made, clock.now - made.at < freshFor(made.frame) { return try made.frame.get() }
            let frame = Result { try make(query, cache: &state.cache, summaries: &state.summaries) }
            state.made = (clock.now, frame)
            return try frame.get()
        }
    }

    /// How long a frame is handed on before it is made again: a tick; at
    /// least a second for a window read from hourly summaries, whose finest
    /// embedded epochs are an hour long: making a month of 10 targets takes
    /// a tenth of a second or more, and twice a second was a third of a
    /// core for no change anyone could see. New probes still show within
    /// about a second of their commit.
    private func freshFor(_ frame: Result<LiveFrame, any Error>) -> Duration {
        guard case .success(let made) = frame, exportUsesSummaries(made.options) else { return configuration.tick }
        return max(configuration.tick, .seconds(1))
    }

    /// frameNow on the feed's queue: making the data of a long window
    /// takes a while, and the server's few threads must keep answering.
    func frame(_ query: LiveQuery) async throws -> LiveFrame {
        let feed = feed(query)
        return try await withCheckedThrowingContinuation { continuation in
            feed.queue.async { continuation.resume(with: Result { try self.frameNow(query, feed) }) }
        }
    }

    private func make(_ query: LiveQuery, cache: inout LivePageCache, summaries: inout KeptSummaries) throws -> LiveFrame {
        madeCount.add(1, ordering: .relaxed)
        let now = wallClockNs()
        let options = try query.exportOptions(now: now, configuration: configuration)
        let db = try Database(path: configuration.databasePath, mode: .readOnly)
        let input = try exportInput(from: db, options, exact: false, kept: &summaries)
        let data = try cache.data(input, options, stableMarginNs: liveStableMarginNs(options.report.timeoutNs))
        madeEpochCount.add(cache.madeEpochs, ordering: .relaxed)
        return LiveFrame(data: data, options: options)
    }
}

/// How old an epoch's end must be before nothing the recorder writes can
/// change it: the recorder matches a reply up to 10 minutes after its probe
/// (ProbeEngine's match window), a probe's verdict waits for its timeout,
/// and a batch may be committed a while after it was cut (a minute of slack
/// for the writer's retries).
func liveStableMarginNs(_ timeoutNs: Nanoseconds) -> Nanoseconds {
    max(600_000_000_000, timeoutNs) + 60_000_000_000
}
