import ArgumentParser
import Foundation
import Reports

/// `--last`, `--since`, `--until`: the window, shared by report and export.
struct WindowOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Window ending now: 30m, 24h, 7d, 2w (default 24h).", valueName: "duration"))
    var last: String?

    @Option(help: ArgumentHelp("Window start: 2026-11-24, 2026-11-24T18:00, ISO 8601 with or without zone (local time without).", valueName: "time"))
    var since: String?

    @Option(help: ArgumentHelp("Window end (default now), same forms as --since.", valueName: "time"))
    var until: String?

    @Flag(help: "Times without a zone are UTC and epochs align to UTC (default: the local time zone, TZ, and its calendar days).")
    var utc = false

    /// Where times typed without a zone are, and which calendar epochs follow.
    var timeZone: TimeZone { utc ? TimeZone(identifier: "UTC")! : .current }
}

/// `--timeout`, `--outage-min`, `--target`: how probes are judged and which
/// targets are shown, shared by report and export so both give the same numbers.
struct JudgementOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A reply later than this counts as late, and the probe as lost.", valueName: "duration"))
    var timeout: String = "2s"

    @Option(help: ArgumentHelp("Consecutive lost probes that make an outage.", valueName: "count"))
    var outageMin: Int = 3

    @Option(help: ArgumentHelp("Only this target (label or host); repeatable.", valueName: "target"))
    var target: [String] = []
}

/// The report options these flags give at `now`; a ValidationError (exit 64)
/// with one sentence when they are wrong.
func reportOptions(_ window: WindowOptions, _ judgement: JudgementOptions, epoch: String?, now: Int64) throws -> ReportOptions {
    do {
        let resolved = try resolveWindow(last: window.last, since: window.since, until: window.until, now: now, timeZone: window.timeZone)
        let epochNs = try epoch.map(parseDuration)
        let timeoutNs = try parseDuration(judgement.timeout)
        guard judgement.outageMin >= 1 else { throw ValidationError("--outage-min must be 1 or more.") }
        return ReportOptions(since: resolved.since, until: resolved.until, epochNs: epochNs,
                             timeoutNs: timeoutNs, outageMin: judgement.outageMin, targets: judgement.target,
                             timeZone: window.utc ? nil : .current)
    } catch let e as ReportError {
        throw ValidationError(e.description)
    }
}

func nowNs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1e9) }
