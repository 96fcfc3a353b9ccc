// The terminal of `pingem watch`: raw mode, the alternate screen, its size,
// and the signals that end or redraw the watch. The calls themselves are in
// System.swift.
//
// Invariant: once `enter` has switched to raw mode and the alternate screen,
// every way out of the watch (q, Ctrl-C, SIGTERM/SIGHUP/SIGINT, a thrown
// error, the recorder child dying) passes through `restore`.
import Synchronization

#if canImport(Glibc)
import Glibc  // termios and its flags
#endif

/// Signals that end or redraw the watch, set by the handler and read by the loop.
private let pendingQuit = Atomic<Bool>(false)
private let pendingResize = Atomic<Bool>(false)

final class Terminal {
    enum Event { case quit, resized }
    private var saved = termios()
    private var restored = false

    /// A signal asked the watch to end.
    static var quitRequested: Bool { pendingQuit.load(ordering: .relaxed) }

    /// SIGTERM, SIGHUP and SIGINT end the watch through its normal exit path
    /// (terminal restored, recorder child stopped); SIGWINCH redraws.
    static func catchSignals() {
        System.handle([SIGTERM, SIGHUP, SIGINT]) { _ in pendingQuit.store(true, ordering: .relaxed) }
        System.handle([SIGWINCH]) { _ in pendingResize.store(true, ordering: .relaxed) }
    }

    static func size(fd: Int32) -> (columns: Int, rows: Int)? {
        System.terminalSize(fd).map { ($0.columns, max($0.rows, 3)) }
    }

    /// Raw input (no echo, no line editing, keys as bytes; Ctrl-C is a byte
    /// too, so the loop quits through restore), the alternate screen, no cursor.
    static func enter() throws -> Terminal {
        let terminal = Terminal()
        do { terminal.saved = try System.terminalAttributes(0) } catch {
            throw fail(WatchError("standard input is not a terminal: use --once, or run pingem watch in a terminal."))
        }
        var raw = terminal.saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        try? System.setTerminalAttributes(0, raw)
        catchSignals()
        write("\u{1B}[?1049h\u{1B}[?25l\u{1B}[H\u{1B}[2J")
        return terminal
    }

    func restore() {
        if restored { return }
        restored = true
        Terminal.write("\u{1B}[0m\u{1B}[?25h\u{1B}[?1049l")
        try? System.setTerminalAttributes(0, saved)
    }

    func draw(_ lines: [String]) {
        Terminal.write("\u{1B}[H" + lines.map { $0 + "\u{1B}[K" }.joined(separator: "\r\n") + "\u{1B}[J")
    }

    /// Waits for a key or a signal until `deadline` (Unix ns).
    func waitForKey(until deadline: Int64) -> Event? {
        if pendingQuit.load(ordering: .relaxed) { return .quit }
        if pendingResize.exchange(false, ordering: .relaxed) { return .resized }
        let ms = Int32(max(0, min(1000, (deadline - nowNs()) / 1_000_000)))
        // A signal ends the wait early (.interrupted): its flag is read below.
        if (try? System.waitForInput(0, milliseconds: ms)) == .ready, let bytes = try? System.read(0, count: 64) {
            if bytes.isEmpty { return .quit }  // the terminal went away
            for byte in bytes where byte == UInt8(ascii: "q") || byte == UInt8(ascii: "Q") || byte == 3 {
                return .quit
            }
        }
        if pendingQuit.load(ordering: .relaxed) { return .quit }
        if pendingResize.exchange(false, ordering: .relaxed) { return .resized }
        return nil
    }

    /// All of `text` to standard output; given up if the terminal refuses it.
    static func write(_ text: String) {
        try? System.write(1, Array(text.utf8))
    }
}

struct WatchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
