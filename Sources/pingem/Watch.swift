// `pingem watch`: the terminal loop around Watch.frame. Everything that draws
// is in Reports; this file only owns the terminal (raw mode, alternate screen,
// size, signals) and, given targets, a `pingem record` child process.
//
// Invariant: once the terminal is switched to raw mode and the alternate
// screen, every way out of run() (q, Ctrl-C, SIGTERM/SIGHUP/SIGINT, a thrown
// error, the recorder child dying) passes through Terminal.restore.
import ArgumentParser
import Foundation
import Recorder
import Reports
import Store
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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

        @Argument(help: ArgumentHelp("Hosts to record while watching: name, address, or label=host.", valueName: "target"))
        var targets: [String] = []

        @Option(help: ArgumentHelp("Time between two probes of one target, when recording.", valueName: "duration"))
        var interval: String = "1s"

        @OptionGroup var judgement: JudgementOptions

        @Flag(help: "Print one frame and exit.")
        var once = false

        @OptionGroup var database: DatabaseOption

        func validate() throws {
            do { _ = try parseDuration(judgement.timeout) } catch { throw ValidationError("--timeout: \(error)") }
            guard judgement.outageMin >= 1 else { throw ValidationError("--outage-min must be 1 or more.") }
            for target in targets {
                do { _ = try TargetSpec(parsing: target) } catch { throw ValidationError("\(error)") }
            }
            do { _ = try parseDuration(interval) } catch { throw ValidationError("--interval: \(error)") }
        }

        var recordArguments: [String] {
            targets + ["--interval", interval, "--db", database.path]
        }

        func run() throws {
            let timeoutNs = try parseDuration(judgement.timeout)
            var recorder: RecorderChild?
            if !targets.isEmpty {
                do { recorder = try RecorderChild(arguments: ["record"] + recordArguments) } catch { throw fail(error) }
            }
            defer { recorder?.stop() }
            // The first probes need a moment (and their timeout) before there is anything to show.
            if once, recorder != nil { usleep(useconds_t(min(timeoutNs / 1000, 3_000_000) + 1_500_000)) }

            let env = ProcessInfo.processInfo.environment
            let tty = isatty(1) == 1
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
                    fflush(nil)
                    sleep(1)  // a signal cuts it short
                    if pendingQuit.load(ordering: .relaxed) { return }
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

/// Loads the last hour every second, keeping the database open between frames.
private struct SnapshotReader {
    var path: String
    var judgement: JudgementOptions
    var timeoutNs: Int64
    var db: Database?

    init(path: String, judgement: JudgementOptions, timeoutNs: Int64) {
        self.path = path; self.judgement = judgement; self.timeoutNs = timeoutNs
    }

    mutating func lines(width: Int, color: Bool) -> [String] {
        let options = WatchFrameOptions(width: width, color: color, source: path)
        do {
            // The recorder creates the database: until it has, wait for it.
            if db == nil { db = try Database(path: path, mode: .readOnly) }
            let hour = Reports.Watch.hourOptions(now: nowNs(), timeoutNs: timeoutNs,
                                                 outageMin: judgement.outageMin, targets: judgement.target)
            let input = try ReportInput.load(from: db!, options: hour)
            return Reports.Watch.frame(try Reports.Watch.snapshot(input, hour), options)
        } catch {
            db = nil
            return Reports.Watch.frame(WatchSnapshot(now: nowNs(), targets: []), options) + ["\(error)"]
        }
    }
}

/// `pingem record` as a child writing the same database: the recorder's own
/// signal handling, lock and flushing stay exactly as they are for the command.
private final class RecorderChild {
    let process = Process()
    let errorFile: URL

    init(arguments: [String]) throws {
        errorFile = FileManager.default.temporaryDirectory.appendingPathComponent("pingem-watch-\(getpid()).err")
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = arguments
        // Not the terminal: the child must not read keys or draw over the frame.
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: errorFile)
        try process.run()
    }

    /// The exit status once the child has exited, nil while it runs.
    func exitStatus() -> Int32? {
        process.isRunning ? nil : process.terminationStatus
    }

    func errorOutput() -> String {
        (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
    }

    /// SIGTERM, then wait: the recorder commits what it holds and exits 0.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: errorFile)
    }
}

/// Signals that end or redraw the watch, set by the handler and read by the loop.
private let pendingQuit = Atomic<Bool>(false)
private let pendingResize = Atomic<Bool>(false)

private final class Terminal {
    enum Event { case quit, resized }
    private var saved = termios()
    private var restored = false

    /// SIGTERM, SIGHUP and SIGINT end the watch through its normal exit path
    /// (terminal restored, recorder child stopped); SIGWINCH redraws.
    static func catchSignals() {
        var caught = sigset_t()
        sigemptyset(&caught)
        for sig in [SIGTERM, SIGHUP, SIGINT] {
            signal(sig) { _ in pendingQuit.store(true, ordering: .relaxed) }
            sigaddset(&caught, sig)
        }
        signal(SIGWINCH) { _ in pendingResize.store(true, ordering: .relaxed) }
        sigaddset(&caught, SIGWINCH)
        // A parent may start us with signals blocked (Foundation's Process
        // does); unblocked here, on the thread that polls, they reach us.
        pthread_sigmask(SIG_UNBLOCK, &caught, nil)
    }

    static func size(fd: Int32) -> (columns: Int, rows: Int)? {
        var ws = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0 else { return nil }
        return (Int(ws.ws_col), Int(max(ws.ws_row, 3)))
    }

    /// Raw input (no echo, no line editing, keys as bytes; Ctrl-C is a byte
    /// too, so the loop quits through restore), the alternate screen, no cursor.
    static func enter() throws -> Terminal {
        let terminal = Terminal()
        guard tcgetattr(0, &terminal.saved) == 0 else {
            throw fail(WatchError("standard input is not a terminal: use --once, or run pingem watch in a terminal."))
        }
        var raw = terminal.saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        tcsetattr(0, TCSAFLUSH, &raw)
        catchSignals()
        write("\u{1B}[?1049h\u{1B}[?25l\u{1B}[H\u{1B}[2J")
        return terminal
    }

    func restore() {
        if restored { return }
        restored = true
        Terminal.write("\u{1B}[0m\u{1B}[?25h\u{1B}[?1049l")
        tcsetattr(0, TCSAFLUSH, &saved)
    }

    func draw(_ lines: [String]) {
        Terminal.write("\u{1B}[H" + lines.map { $0 + "\u{1B}[K" }.joined(separator: "\r\n") + "\u{1B}[J")
    }

    /// Waits for a key or a signal until `deadline` (Unix ns).
    func waitForKey(until deadline: Int64) -> Event? {
        if pendingQuit.load(ordering: .relaxed) { return .quit }
        if pendingResize.exchange(false, ordering: .relaxed) { return .resized }
        var fds = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        let ms = Int32(max(0, min(1000, (deadline - nowNs()) / 1_000_000)))
        let ready = poll(&fds, 1, ms)  // EINTR on a signal: the flags are read on the next call
        if ready > 0 {
            var bytes = [UInt8](repeating: 0, count: 64)
            let n = read(0, &bytes, bytes.count)
            if n == 0 { return .quit }  // the terminal went away
            for byte in bytes.prefix(max(0, n)) where byte == UInt8(ascii: "q") || byte == UInt8(ascii: "Q") || byte == 3 {
                return .quit
            }
        }
        if pendingQuit.load(ordering: .relaxed) { return .quit }
        if pendingResize.exchange(false, ordering: .relaxed) { return .resized }
        return nil
    }

    static func write(_ text: String) {
        var data = Array(text.utf8)
        var offset = 0
        while offset < data.count {
            let n = data.withUnsafeMutableBytes { Glibc.write(1, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}

struct WatchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
