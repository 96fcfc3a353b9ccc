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
                timeout ran out. Time when no recorder ran is "no data", never loss. Several \
                --db put databases (recorders on several machines) side by side, one vantage each.
                """
        )

        @OptionGroup var window: WindowOptions

        @Option(help: ArgumentHelp("Split the window into epochs of this width, from local midnight: 1d is a calendar day, 1w starts on Monday, 5m epochs start at :00, :05, ... (UTC with --utc).", valueName: "duration"))
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

        @Flag(help: "After each target, its path hop by hop (mtr style) and where its loss begins (table format).")
        var path = false

        // report's own --db: repeatable, unlike the other subcommands'.
        @Option(name: .customLong("db"), help: ArgumentHelp(
            "SQLite database file; repeat to report several side by side, each named by its file (home.db is home) or as NAME=PATH.",
            discussion: "Default: $PINGEM_DB, else $XDG_DATA_HOME/pingem/pingem.db, else ~/.local/share/pingem/pingem.db.",
            valueName: "path"))
        var databases: [String] = []

        func validate() throws {
            _ = try reportOptions(window, judgement, epoch: epoch, now: nowNs())
            _ = try thresholds()
            _ = try vantages()
            if path && format != .table {
                throw ValidationError("--path adds the hop table to the table format; JSON always has \"path\" and CSV the where_ columns, so drop --path or use --format table.")
            }
        }

        /// The databases, named when there are several; one sentence (exit 64) on a clash.
        func vantages() throws -> [VantageDatabase] {
            if databases.isEmpty {
                let path = Database.defaultPath(environment: ProcessInfo.processInfo.environment)
                return [VantageDatabase(name: vantageName(ofPath: path), path: path)]
            }
            // One database (even as NAME=PATH) is reported without a vantage.
            do {
                return try parseVantages(databases) { FileManager.default.fileExists(atPath: $0) }
            } catch let e as ReportError {
                throw ValidationError(e.description)
            }
        }

        func thresholds() throws -> [Threshold] {
            do { return try failIf.map(Threshold.init(parsing:)) } catch let e as ReportError {
                throw ValidationError(e.description)
            }
        }

        func run() throws {
            System.keepFreedMemoryForReuse()
            let options = try reportOptions(window, judgement, epoch: epoch, now: nowNs())
            let report: Reports.Report
            let vantages = try vantages()
            do {
                if vantages.count == 1 {
                    let db = try Database(path: vantages[0].path, mode: .readOnly)
                    var input = try ReportInput.load(from: db, options: options, summaries: !exact)
                    try input.loadPathProbes(from: db, options: options, summaries: !exact)
                    report = try makeReport(input, options)
                } else {
                    var opened: [(vantage: String, db: Database)] = []
                    for v in vantages {
                        do { opened.append((v.name, try Database(path: v.path, mode: .readOnly))) } catch {
                            throw VantageError(vantage: v.name, error: error)
                        }
                    }
                    report = try makeVantageReport(opened, options, summaries: !exact)
                }
            } catch let e as ReportError {
                throw usageFail(e)
            } catch {
                throw fail(error)
            }
            let env = ProcessInfo.processInfo.environment
            let color = System.isTerminal(1) && (env["NO_COLOR"] ?? "").isEmpty && format == .table
            print(render(report, as: format, color: color, timeZone: window.timeZone, path: path), terminator: "")
            let crossed = Threshold.crossings(try thresholds(), in: report)
            if !crossed.isEmpty {
                System.flushStandardOutput()
                for line in crossed { FileHandle.standardError.write(Data("pingem: \(line)\n".utf8)) }
                throw ExitCode(3)
            }
        }
    }
}

extension ReportFormat: ExpressibleByArgument {}

