import ArgumentParser
import Foundation
import Reports
import Store

extension Pingem {
    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the recorded rows of any window as CSV, compacted hours included.",
            discussion: """
                --table probe (default) gives sent_ns,target,rtt_ns,send_error: every probe with \
                its first reply (empty when none came). --table reply gives every other reply \
                (duplicates), --table icmp_error every ICMP error. Times are integer nanoseconds \
                since the epoch, rtt_ns a duration. Without --last or --since, the whole history \
                (not the last 24h a report defaults to).
                """
        )

        @OptionGroup var window: WindowOptions

        @Option(help: ArgumentHelp("Only this target (label or host); repeatable.", valueName: "target"))
        var target: [String] = []

        @Option(help: ArgumentHelp("Which rows.", valueName: "table"))
        var table: DumpTable = .probe

        @OptionGroup var database: DatabaseOption

        func bounds() throws -> (Int64, Int64) {
            guard window.last != nil || window.since != nil || window.until != nil else { return (.min, .max) }
            do {
                if window.last == nil && window.since == nil {
                    // Only --until: everything before it.
                    let w = try resolveWindow(last: "1s", since: nil, until: window.until, now: nowNs(), timeZone: window.timeZone)
                    return (.min, w.until)
                }
                let w = try resolveWindow(last: window.last, since: window.since, until: window.until, now: nowNs(), timeZone: window.timeZone)
                return (w.since, w.until)
            } catch let e as ReportError {
                throw ValidationError(e.description)
            }
        }

        func validate() throws { _ = try bounds() }

        func run() throws {
            let (since, until) = try bounds()
            do {
                let db = try Database(path: database.path, mode: .readOnly)
                try dumpCSV(db, table: table, since: since, until: until, targets: target) { chunk in
                    FileHandle.standardOutput.write(Data(chunk.utf8))
                }
            } catch let e as ReportError {
                throw usageFail(e)
            } catch {
                throw fail(error)
            }
        }
    }
}

extension DumpTable: ExpressibleByArgument {}
