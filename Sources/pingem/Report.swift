import ArgumentParser
import Foundation
import Reports
import Store

extension Pingem {
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Summarise any window of the recorded history: loss, latency, jitter, outages.",
            discussion: """
                A probe is received if its first reply came within --timeout, late if after it \
                (late counts as lost), unknown if no reply came and the recorder stopped before the \
                timeout ran out. Time when no recorder ran is "no data", never loss.
                """
        )

        @Option(help: ArgumentHelp("Window ending now: 30m, 24h, 7d, 2w (default 24h).", valueName: "duration"))
        var last: String?

        @Option(help: ArgumentHelp("Window start: 2026-11-24, 2026-11-24T18:00, ISO 8601 with or without zone (local time without).", valueName: "time"))
        var since: String?

        @Option(help: ArgumentHelp("Window end (default now), same forms as --since.", valueName: "time"))
        var until: String?

        @Option(help: ArgumentHelp("Split the window into epochs of this width, aligned to UTC multiples (5m epochs start at :00, :05, ...).", valueName: "duration"))
        var epoch: String?

        @Option(help: ArgumentHelp("A reply later than this counts as late, and the probe as lost.", valueName: "duration"))
        var timeout: String = "2s"

        @Option(help: ArgumentHelp("Consecutive lost probes that make an outage.", valueName: "count"))
        var outageMin: Int = 3

        @Option(help: ArgumentHelp("Only this target (label or host); repeatable.", valueName: "target"))
        var target: [String] = []

        @Option(help: ArgumentHelp("table, csv or json.", valueName: "format"))
        var format: ReportFormat = .table

        @OptionGroup var database: DatabaseOption

        func options(now: Int64) throws -> ReportOptions {
            do {
                let window = try resolveWindow(last: last, since: since, until: until, now: now, timeZone: .current)
                let epochNs = try epoch.map(parseDuration)
                let timeoutNs = try parseDuration(timeout)
                guard outageMin >= 1 else { throw ValidationError("--outage-min must be 1 or more.") }
                return ReportOptions(since: window.since, until: window.until, epochNs: epochNs,
                                     timeoutNs: timeoutNs, outageMin: outageMin, targets: target)
            } catch let e as ReportError {
                throw ValidationError(e.description)
            }
        }

        func validate() throws {
            _ = try options(now: Int64(Date().timeIntervalSince1970 * 1e9))
        }

        func run() throws {
            let options = try options(now: Int64(Date().timeIntervalSince1970 * 1e9))
            let report: Reports.Report
            do {
                let db = try Database(path: database.path, mode: .readOnly)
                let input = try ReportInput.load(from: db, options: options)
                report = try makeReport(input, options)
            } catch let e as ReportError {
                throw usageFail(e)
            } catch {
                throw fail(error)
            }
            let env = ProcessInfo.processInfo.environment
            let color = isatty(1) == 1 && (env["NO_COLOR"] ?? "").isEmpty && format == .table
            print(render(report, as: format, color: color), terminator: "")
        }
    }
}

extension ReportFormat: ExpressibleByArgument {}
