// serve's finer zoom on long windows. A page of more than 7 days embeds only
// epochs of an hour and more (read from hourly summaries, so a year stays a
// few MB), so the live page asks serve for the finer epochs of the range it
// zooms into (GET /level) and for the single probes of a short range
// (GET /probes). Each answer is made by the export's own code over that
// range (exportInput, exportLevel, exportProbes): a level is exactly the one
// `pingem export html` of that range embeds at that width, shaped as the
// page's data block shapes it, bounds in ms from the range's start.
//
// Bounded, so one request never holds more than a few hours of raw probes
// nor makes a huge answer: at most levelMaximumEpochs epochs per target, and
// a range read from raw probes (an epoch under an hour, single probes) at
// most levelRawSpanLimitNs long. Requests are made one at a time.
import Foundation
import Hummingbird
import Reports
import Store

/// The most epochs per target one /level answer has.
let levelMaximumEpochs: Int64 = 2_000
/// The longest range read from raw probes: the export's own limit for
/// embedding single probes (ExportOptions.rawProbeLimitNs).
let levelRawSpanLimitNs: Nanoseconds = ExportOptions(report: ReportOptions(since: 0, until: 1), generatedNs: 0).rawProbeLimitNs
private let hourNs: Nanoseconds = 3600 * 1_000_000_000

/// One /level or /probes request: a range of the page's window (Unix ms)
/// and, for /level, the epoch width; targets, timeout and outage-min are the
/// page's, read as /events reads them.
struct LevelRequest: Sendable {
    var query: LiveQuery
    var since: String?
    var until: String?
    /// nil: the range's single probes (/probes).
    var epoch: String?

    init(query: LiveQuery, since: String?, until: String?, epoch: String?) {
        self.query = query; self.since = since; self.until = until; self.epoch = epoch
    }

    init(_ request: Request, probes: Bool) {
        let q = request.uri.queryParameters
        // since and until here are the range, not the page's window.
        var query = LiveQuery(request)
        query.last = nil; query.since = nil; query.until = nil; query.epoch = nil
        self.init(query: query, since: q["since"].map { String($0) }, until: q["until"].map { String($0) },
                  epoch: probes ? nil : q["epoch"].map { String($0) } ?? "")
    }

    /// The export options of the range, checked against the bounds.
    func exportOptions(now: Nanoseconds, configuration: ServeConfiguration) throws -> ExportOptions {
        guard let sinceMs = since.flatMap({ Int64($0) }), let untilMs = until.flatMap({ Int64($0) }), sinceMs < untilMs else {
            throw ReportError("Give the range as since=<Unix ms>&until=<Unix ms>, since before until.")
        }
        var report = try query.reportOptions(now: now, configuration: configuration)
        report.since = sinceMs * 1_000_000
        report.until = untilMs * 1_000_000
        let span = report.until - report.since
        guard let epoch else {
            if span > levelRawSpanLimitNs {
                throw ReportError("Single probes are given for at most \(levelRawSpanLimitNs / hourNs) hours of the window: zoom in further.")
            }
            return ExportOptions(report: report, generatedNs: now)
        }
        guard let width = try? parseDuration(epoch), width > 0 else {
            throw ReportError("Give the level's epoch as epoch=<width> (1m, 5m, 1h...).")
        }
        let epochs = span / width > 2 * levelMaximumEpochs ? span / width
            : Int64(epochPeriods(since: report.since, until: report.until, epochNs: width, timeZone: report.timeZone).count)
        if epochs > levelMaximumEpochs {
            throw ReportError("An epoch of \(epoch) cuts this range into \(epochs) epochs, more than \(levelMaximumEpochs): zoom in further or choose a coarser epoch.")
        }
        if width < hourNs && span > levelRawSpanLimitNs {
            throw ReportError("Epochs under 1h are read from raw probes, for at most \(levelRawSpanLimitNs / hourNs) hours of the window: zoom in further or choose an epoch of 1h or more.")
        }
        return ExportOptions(report: report, generatedNs: now, chosenEpochNs: width)
    }
}

/// The answer to `request` at `now`, read and computed afresh: one level of
/// the page's data, or its single probes (JSON).
func levelData(_ request: LevelRequest, configuration: ServeConfiguration, now: Nanoseconds) throws -> String {
    let options = try request.exportOptions(now: now, configuration: configuration)
    let db = try Database(path: configuration.databasePath, mode: .readOnly)
    let input = try exportInput(from: db, options, exact: false)
    return request.epoch == nil ? try exportProbes(input, options) : try exportLevel(input, options)
}

/// One request at a time: each holds at most a few hours of raw probes, and
/// the server's few threads must keep answering meanwhile.
private let levelQueue = DispatchQueue(label: "pingem.level")

/// The handler of /level and /probes: JSON, or 400 with one sentence.
func levelResponse(_ request: LevelRequest, configuration: ServeConfiguration) async -> (HTTPResponse.Status, String) {
    await withCheckedContinuation { continuation in
        levelQueue.async {
            do {
                continuation.resume(returning: (.ok, try levelData(request, configuration: configuration, now: wallClockNs())))
            } catch let error as ReportError {
                continuation.resume(returning: (.badRequest, "pingem: \(error)\n"))
            } catch {
                continuation.resume(returning: (.serviceUnavailable, "pingem: \(error)\n"))
            }
        }
    }
}
