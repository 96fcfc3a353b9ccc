// The only caller of libc in the CLI (swift-nio NIOPosix/System.swift style):
// the terminal, signals, the export's rename and the allocator's settings go
// through here, so the subcommand files speak Swift. Calls that can fail
// retry EINTR (a signal is not a failure, Store's SystemCall rule) and throw
// a `SystemCallError` that keeps the call's name and errno, except where a
// signal is the very thing the caller waits for: `waitForInput` and
// `sleepUntilSignal` return early on one, and say so.

import Glibc
import Store

enum System {
    private static func retryingEINTR<T: FixedWidthInteger>(_ function: String, _ body: () -> T) throws(SystemCallError) -> T {
        try SystemCall.retryingEINTR(function, body)
    }

    static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    // MARK: Files

    static func rename(_ from: String, to: String) throws(SystemCallError) {
        _ = try retryingEINTR("rename") { Glibc.rename(from, to) }
    }

    static func unlink(_ path: String) throws(SystemCallError) {
        _ = try retryingEINTR("unlink") { Glibc.unlink(path) }
    }

    // MARK: Terminal

    /// The terminal's size on `fd`, nil when it is no terminal (or says 0 columns).
    static func terminalSize(_ fd: Int32) -> (columns: Int, rows: Int)? {
        var size = winsize()
        guard (try? retryingEINTR("ioctl", { ioctl(fd, UInt(TIOCGWINSZ), &size) })) != nil, size.ws_col > 0 else {
            return nil
        }
        return (Int(size.ws_col), Int(size.ws_row))
    }

    static func terminalAttributes(_ fd: Int32) throws(SystemCallError) -> termios {
        var attributes = termios()
        _ = try retryingEINTR("tcgetattr") { tcgetattr(fd, &attributes) }
        return attributes
    }

    /// tcsetattr(TCSAFLUSH): pending input is dropped with the change.
    static func setTerminalAttributes(_ fd: Int32, _ attributes: termios) throws(SystemCallError) {
        var attributes = attributes
        _ = try retryingEINTR("tcsetattr") { tcsetattr(fd, TCSAFLUSH, &attributes) }
    }

    enum InputWait { case ready, timedOut, interrupted }

    /// poll(2) for input on `fd` for at most `milliseconds`. Not retried on
    /// EINTR: a caught signal ends the wait (`.interrupted`), so the caller
    /// reads the flags its handler set at once instead of after the timeout.
    static func waitForInput(_ fd: Int32, milliseconds: Int32) throws(SystemCallError) -> InputWait {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = Glibc.poll(&descriptor, 1, milliseconds)
        if ready > 0 { return .ready }
        if ready == 0 { return .timedOut }
        let error = Glibc.errno
        if error == EINTR { return .interrupted }
        throw SystemCallError(function: "poll", errno: error)
    }

    /// read(2) of at most `count` bytes; empty at the end of the input.
    static func read(_ fd: Int32, count: Int) throws(SystemCallError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let read = try retryingEINTR("read") {
            buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        }
        return Array(buffer[..<read])
    }

    /// write(2) until every byte is written.
    static func write(_ fd: Int32, _ bytes: [UInt8]) throws(SystemCallError) {
        var done = 0
        while done < bytes.count {
            let count = try retryingEINTR("write") {
                bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            }
            // write(2) returns 0 only for a count of 0; guard against a spin anyway.
            if count == 0 { return }
            done += count
        }
    }

    // MARK: Signals and time

    /// Handlers (C functions: they may only touch atomics) for `signals`, and
    /// the signals unblocked on this thread: a parent may start us with them
    /// blocked (Foundation's Process does), and threads inherit the mask.
    static func handle(_ signals: [Int32], with handler: @convention(c) (Int32) -> Void) {
        for number in signals { _ = signal(number, handler) }
        unblock(signals)
    }

    /// The default action for `signals`, unblocked: a parent may hand them
    /// down ignored or blocked (test runners do).
    static func restoreDefaultAction(_ signals: [Int32]) {
        unblock(signals)
        for number in signals { _ = signal(number, SIG_DFL) }
    }

    private static func unblock(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for number in signals { sigaddset(&set, number) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// sleep(3), cut short by a caught signal (on purpose: see waitForInput).
    static func sleepUntilSignal(seconds: UInt32) {
        _ = Glibc.sleep(seconds)
    }

    /// usleep(3); a caught signal may cut it short.
    static func sleep(microseconds: UInt32) {
        _ = usleep(microseconds)
    }

    /// Standard output's buffer, written out before stderr (unbuffered)
    /// speaks, so the two come out in the order they were printed.
    static func flushStandardOutput() {
        fflush(nil)
    }

    // MARK: Memory

    /// For one-shot readers (report, export) that build and drop arrays of
    /// hundreds of thousands of probes: glibc serves each allocation over 128 KiB
    /// (growing adaptively) with a fresh mmap and returns it with munmap, so every
    /// such array is paid again in page faults and zeroed pages (a third of a
    /// day's `--epoch 5m` report was kernel time). Keeping big blocks in the heap
    /// lets the next array reuse them. Not for the recorder: it runs for months
    /// and should give memory back.
    static func keepFreedMemoryForReuse() {
        // mallopt is in <malloc.h>, which the Glibc module does not bring in.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return }  // nil: RTLD_DEFAULT
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        let mmapThreshold: Int32 = -3, trimThreshold: Int32 = -1  // M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
        _ = mallopt(mmapThreshold, 1 << 30)
        _ = mallopt(trimThreshold, Int32.max)
    }
}
