// The only caller of libc file functions in Store (swift-nio
// NIOPosix/System.swift style): the lock file and the database file's
// preparation go through here. Every wrapper retries EINTR (a signal is not a
// failure), reports EWOULDBLOCK from a nonblocking lock or EEXIST where
// something already there is fine as a result, and otherwise throws a
// `SystemCallError` that keeps the call's name and errno.
// `close` is never retried: on Linux the fd is gone even when close reports
// EINTR, and retrying could close a descriptor another thread just got.

import Glibc

/// A failed system call: which one, and its errno. Shared by the modules
/// above Store that call libc (Serve, the CLI), so the rule below is written
/// once.
public struct SystemCallError: Error, Equatable, CustomStringConvertible {
    public var function: String
    public var errno: Int32

    public init(function: String, errno: Int32) {
        self.function = function; self.errno = errno
    }

    /// The errno's text, as the user sees it inside an error sentence.
    public var reason: String { String(cString: strerror(errno)) }

    public var description: String { "\(function) failed: \(reason) (errno \(errno))" }
}

public enum SystemCall {
    /// `body` (a libc call returning -1 on failure) again while it fails
    /// with EINTR; any other failure is thrown with its errno.
    public static func retryingEINTR<T: FixedWidthInteger>(_ function: String, _ body: () -> T) throws(SystemCallError) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let error = Glibc.errno
            if error == EINTR { continue }
            throw SystemCallError(function: function, errno: error)
        }
    }

    public static func close(_ fd: Int32) throws(SystemCallError) {
        if Glibc.close(fd) == -1 {
            let error = Glibc.errno
            // EINTR: the fd is released anyway on Linux (close(2) NOTES).
            if error != EINTR { throw SystemCallError(function: "close", errno: error) }
        }
    }
}

enum System {
    private static func retryingEINTR<T: FixedWidthInteger>(_ function: String, _ body: () -> T) throws(SystemCallError) -> T {
        try SystemCall.retryingEINTR(function, body)
    }

    static func open(_ path: String, flags: Int32, permissions: mode_t = 0) throws(SystemCallError) -> Int32 {
        try retryingEINTR("open") { Glibc.open(path, flags, permissions) }
    }

    /// flock(2) with LOCK_NB: false when another open file description holds
    /// a conflicting lock (EWOULDBLOCK), which is an answer, not a failure.
    static func tryLock(_ fd: Int32, operation: Int32) throws(SystemCallError) -> Bool {
        do {
            _ = try retryingEINTR("flock") { flock(fd, operation | LOCK_NB) }
            return true
        } catch where error.errno == EWOULDBLOCK {
            return false
        }
    }

    static func unlock(_ fd: Int32) throws(SystemCallError) {
        _ = try retryingEINTR("flock") { flock(fd, LOCK_UN) }
    }

    static func truncate(_ fd: Int32, length: off_t) throws(SystemCallError) {
        _ = try retryingEINTR("ftruncate") { Glibc.ftruncate(fd, length) }
    }

    /// pwrite(2) until every byte is written: a short write goes on from
    /// where it stopped.
    static func write(_ fd: Int32, _ bytes: [UInt8], at offset: off_t) throws(SystemCallError) {
        var done = 0
        while done < bytes.count {
            let count = try retryingEINTR("pwrite") {
                bytes.withUnsafeBytes { Glibc.pwrite(fd, $0.baseAddress! + done, $0.count - done, offset + off_t(done)) }
            }
            done += count
        }
    }

    /// pread(2) of at most `count` bytes at `offset`: fewer at the end of the file.
    static func read(_ fd: Int32, count: Int, at offset: off_t) throws(SystemCallError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let read = try retryingEINTR("pread") {
            buffer.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress, $0.count, offset) }
        }
        return Array(buffer[..<read])
    }

    static func close(_ fd: Int32) throws(SystemCallError) {
        try SystemCall.close(fd)
    }

    static func unlink(_ path: String) throws(SystemCallError) {
        _ = try retryingEINTR("unlink") { Glibc.unlink(path) }
    }

    /// stat(2); nil when nothing is at `path` (ENOENT).
    static func fileStatus(_ path: String) throws(SystemCallError) -> Glibc.stat? {
        var info = Glibc.stat()
        do {
            _ = try retryingEINTR("stat") { stat(path, &info) }
        } catch where error.errno == ENOENT {
            return nil
        }
        return info
    }

    /// mkdir(2); a folder (or anything) already at `path` is no failure (EEXIST).
    static func makeFolder(_ path: String, permissions: mode_t) throws(SystemCallError) {
        do {
            _ = try retryingEINTR("mkdir") { Glibc.mkdir(path, permissions) }
        } catch where error.errno == EEXIST {
        }
    }

    static var processID: Int32 { getpid() }
}
