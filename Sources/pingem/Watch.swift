// `pingem watch`: the loop around Watch.frame. Everything that draws is in
// Reports; the terminal (raw mode, alternate screen, size, signals) is
// Terminal.swift, the `pingem record` child RecorderChild.swift, and the
// history read once a second SnapshotReader.swift.
import ArgumentParser
import Foundation
import Recorder
import Reports

extension Pingem {
    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show every target live: last RTT, loss and latency over the last minute and hour.",
            discussion: """
                Without targets, follows the database a running pingem record writes (read-only). \
                With targets, records them itself (as pingem record would) while it shows them. \
                q or Ctrl-C quits. NO_COLOR or a non-terminal output gives plain text.
                """
        )

        @Argument(help: ArgumentHelp("Hosts to record while watching: name, address, or label=host, with options after a comma.", valueName: "target"))
        var targets: [String] = []

        @OptionGroup var probeOptions: ProbeOptionFlags

        @Option(help: ArgumentHelp("Time between two probes of one target, when recording.", valueName: "duration"))
        var interval: String = "1s"

        @OptionGroup var judgement: JudgementOptions

        @Flag(help: "Print one frame and exit.")
        var once = false

        @OptionGroup var database: DatabaseOption

        func validate() throws {
            do { _ = try parseDuration(judgement.timeout) } catch { throw ValidationError("--timeout: \(error)") }
            guard judgement.outageMin >= 1 else { throw ValidationError("--outage-min must be 1 or more.") }
            let defaults = try probeOptions.options
            do { try defaults.checkGlobal() } catch { throw ValidationError("\(error)") }
            for target in targets {
                do { _ = try TargetSpec(parsing: target).withDefaults(defaults) } catch { throw ValidationError("\(error)") }
            }
            do { _ = try parseDuration(interval) } catch { throw ValidationError("--interval: \(error)") }
        }

        var recordArguments: [String] {
            targets + probeOptions.arguments + ["--interval", interval, "--db", database.path]
        }

        func run() throws {
            let timeoutNs = try parseDuration(judgement.timeout)
            var recorder: RecorderChild?
            if !targets.isEmpty {
                do { recorder = try RecorderChild(arguments: ["record"] + recordArguments) } catch { throw fail(error) }
            }
            defer { recorder?.stop() }
            // The first probes need a moment (and their timeout) before there is anything to show.
            if once, recorder != nil { System.sleep(microseconds: UInt32(min(timeoutNs / 1000, 3_000_000) + 1_500_000)) }

            let env = ProcessInfo.processInfo.environment
            let tty = System.isTerminal(1)
            let color = tty && (env["NO_COLOR"] ?? "").isEmpty
            var reader = SnapshotReader(path: database.path, judgement: judgement, timeoutNs: timeoutNs)
            func frame(width: Int) -> [String] {
                let lines = reader.lines(width: width, color: color)
                return lines
            }

            if once || !tty {
                // Non-terminals get plain frames, one after another, every second,
                // until a signal: then the recorder child is stopped by the defer.
                Terminal.catchSignals()
                while true {
                    print(frame(width: Terminal.size(fd: 1)?.columns ?? 120).joined(separator: "\n"))
                    if once { return }
                    if let status = recorder?.exitStatus() { throw recorderDied(recorder!, status) }
                    System.flushStandardOutput()
                    System.sleepUntilSignal(seconds: 1)
                    if Terminal.quitRequested { return }
                    print()
                }
            }

            let terminal = try Terminal.enter()
            defer { terminal.restore() }
            var next = nowNs()
            while true {
                if nowNs() >= next {
                    let size = Terminal.size(fd: 1) ?? (columns: 80, rows: 24)
                    terminal.draw(Array(frame(width: size.columns).prefix(size.rows)))
                    next += 1_000_000_000
                    if next < nowNs() { next = nowNs() + 1_000_000_000 }
                }
                switch terminal.waitForKey(until: next) {
                case .quit: return
                case .resized: next = nowNs()
                case .none: break
                }
                if let status = recorder?.exitStatus() {
                    terminal.restore()
                    throw recorderDied(recorder!, status)
                }
            }
        }

        private func recorderDied(_ recorder: RecorderChild, _ status: Int32) -> ExitCode {
            let said = recorder.errorOutput().trimmingCharacters(in: .whitespacesAndNewlines)
            FileHandle.standardError.write(Data((said.isEmpty ? "pingem: the recorder exited with status \(status)." : said).utf8 + [10]))
            return ExitCode.failure
        }
    }
}
