import ArgumentParser
import Foundation
import Reports
import Store

extension Pingem {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a window of the recorded history for people to look at.",
            subcommands: [HTML.self]
        )
    }
}

extension Pingem.Export {
    struct HTML: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "html",
            abstract: "Write one self-contained HTML page: a graph and a summary per target.",
            discussion: """
                The page needs no network and opens offline. Its figures are those of \
                pingem report for the same window and --timeout (windows longer than a week \
                embed epochs of an hour or more, read from hourly summaries as report does; \
                --exact reads every probe). The file is written to a \
                temporary name and renamed, so an existing file is replaced only on success.
                """
        )

        @OptionGroup var window: WindowOptions

        @OptionGroup var judgement: JudgementOptions

        @Option(name: [.short, .long], help: ArgumentHelp(
            "Output file, - for stdout (default pingem-<start>-<end>.html in the current folder).", valueName: "path"))
        var output: String?

        @Flag(help: "Classify every probe: exact percentiles, no hourly summaries (slower, and more memory, over long windows).")
        var exact = false

        @OptionGroup var database: DatabaseOption

        func validate() throws {
            _ = try reportOptions(window, judgement, epoch: nil, now: nowNs())
            if let output, output.isEmpty { throw ValidationError("--output needs a file name, or - for stdout.") }
        }

        func run() throws {
            System.keepFreedMemoryForReuse()
            let now = nowNs()
            let options = try reportOptions(window, judgement, epoch: nil, now: now)
            // Progress only for a person watching: a terminal on stderr.
            let showProgress = System.isTerminal(2)
            let progress: ((String) -> Void)? = showProgress ? { stage in
                FileHandle.standardError.write(Data("\rpingem: \(stage)...\u{1B}[K".utf8))
            } : nil
            let page: String
            do {
                progress?("reading the database")
                let db = try Database(path: database.path, mode: .readOnly)
                let export = ExportOptions(report: options, generatedNs: now)
                let input = try exportInput(from: db, export, exact: exact)
                page = try exportHTML(input, export, progress: progress)
            } catch let e as ReportError {
                if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                throw usageFail(e)
            } catch {
                if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                throw fail(error)
            }
            if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            let path = output ?? exportFileName(since: options.since, until: options.until)
            if path == "-" {
                FileHandle.standardOutput.write(Data(page.utf8))
                return
            }
            do {
                try writeAtomically(Data(page.utf8), to: path)
            } catch {
                throw fail(error)
            }
            if showProgress { FileHandle.standardError.write(Data("pingem: wrote \(path)\n".utf8)) }
        }
    }
}

struct ExportWriteError: Error, CustomStringConvertible {
    var description: String
}

/// Writes `data` to a temporary file in `path`'s folder, then renames it over
/// `path`: readers see the old file or the whole new one, never a part.
func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let folder = url.deletingLastPathComponent().path
    let temporary = url.deletingLastPathComponent()
        .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp").path
    guard FileManager.default.createFile(atPath: temporary, contents: data) else {
        try? System.unlink(temporary)  // a partial file, if the disk filled up
        throw ExportWriteError(description: "Cannot write in \(folder): choose an output (-o) in a folder you can write to.")
    }
    do {
        try System.rename(temporary, to: path)
    } catch {
        try? System.unlink(temporary)
        throw ExportWriteError(description: "Cannot replace \(path) (\(error.reason)): choose another output file with -o.")
    }
}
