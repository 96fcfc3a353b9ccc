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

        @OptionGroup var window: WindowOptions

        @Option(help: ArgumentHelp("Split the window into epochs of this width, aligned to UTC multiples (5m epochs start at :00, :05, ...).", valueName: "duration"))
        var epoch: String?

        @OptionGroup var judgement: JudgementOptions

        @Option(help: ArgumentHelp("table, csv or json.", valueName: "format"))
        var format: ReportFormat = .table

        @Option(name: .customLong("fail-if"), help: ArgumentHelp(
            "Exit 3 if a target's window crosses this threshold: loss_pct>1, p90>80ms, coverage<99; repeatable.",
            valueName: "field>value"))
        var failIf: [String] = []

        @Flag(help: "Classify every probe: exact percentiles, no hourly summaries (slower over long windows).")
        var exact = false

        @OptionGroup var database: DatabaseOption

        func validate() throws {
            _ = try reportOptions(window, judgement, epoch: epoch, now: nowNs())
            _ = try thresholds()
        }

        func thresholds() throws -> [Threshold] {
            do { return try failIf.map(Threshold.init(parsing:)) } catch let e as ReportError {
                throw ValidationError(e.description)
            }
        }

        func run() throws {
            let options = try reportOptions(window, judgement, epoch: epoch, now: nowNs())
            let report: Reports.Report
            do {
                let db = try Database(path: database.path, mode: .readOnly)
                let input = try ReportInput.load(from: db, options: options, summaries: !exact)
                report = try makeReport(input, options)
            } catch let e as ReportError {
                throw usageFail(e)
            } catch {
                throw fail(error)
            }
            let env = ProcessInfo.processInfo.environment
            let color = isatty(1) == 1 && (env["NO_COLOR"] ?? "").isEmpty && format == .table
            print(render(report, as: format, color: color), terminator: "")
            let crossed = Threshold.crossings(try thresholds(), in: report)
            if !crossed.isEmpty {
                fflush(nil)
                for line in crossed { FileHandle.standardError.write(Data("pingem: \(line)\n".utf8)) }
                throw ExitCode(3)
            }
        }
    }
}

extension ReportFormat: ExpressibleByArgument {}
