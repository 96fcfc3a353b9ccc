// One recorder per database: `<db>.lock`, held with flock(2) for the life of
// the recording process. flock locks belong to the open file description, so
// the kernel drops the lock when the process dies, however it dies: a stale
// lock file is harmless, and the pid in it is only for the message.
//
// (flock, not SQLite's own locks: a recorder holds no SQLite lock between
// batches, and readers must not be locked out at all.)

#if canImport(Glibc)
import Glibc
#endif

public final class RecorderLock: Sendable {
    /// Held open until the process ends; never closed, so never retried.
    private let fd: Int32
    public let lockPath: String
    /// This acquire created the lock file (it did not exist before).
    public let created: Bool

    private init(fd: Int32, lockPath: String, created: Bool) {
        self.fd = fd; self.lockPath = lockPath; self.created = created
    }

    /// For a start refused before anything was recorded (a database that is
    /// not ours, unwritable, ...): removes the lock file if this process
    /// created it, so a refusal leaves the folder as it was found. Done while
    /// the lock is still held; a recorder that opened the file meanwhile was
    /// refused by the lock anyway.
    public func removeCreatedFile() {
        if created { unlink(lockPath) }
    }

    deinit {
        // Closing the last descriptor of the description releases the lock.
        close(fd)
    }

    public static func lockPath(databasePath: String) -> String { databasePath + ".lock" }

    /// Takes the database's recorder lock, creating `<db>.lock` (0600, and its
    /// folder 0700) if needed, and writes our pid into it. Keep the returned
    /// lock alive as long as the process records.
    public static func acquire(databasePath: String, permissions: mode_t = 0o600) throws -> RecorderLock {
        let path = lockPath(databasePath: databasePath)
        try Database.createFolders(containing: path, permissions: permissions)
        // O_EXCL first, only to know whether the file is ours to remove.
        var created = true
        var fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        if fd < 0 && errno == EEXIST {
            created = false
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, permissions)
        }
        guard fd >= 0 else { throw RecorderLockError(databasePath: databasePath, reason: .cannotOpen(errnoText())) }
        var result: Int32
        repeat { result = flock(fd, LOCK_EX | LOCK_NB) } while result != 0 && errno == EINTR
        if result != 0 {
            let code = errno
            let holder = readPid(fd: fd)
            close(fd)
            if code == EWOULDBLOCK {
                throw RecorderLockError(databasePath: databasePath, reason: .heldBy(pid: holder))
            }
            throw RecorderLockError(databasePath: databasePath, reason: .cannotOpen(errnoText(code)))
        }
        let text = Array("\(getpid())\n".utf8)
        // Truncate first: a longer pid from an earlier run must not show through.
        if ftruncate(fd, 0) != 0 || text.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, 0) }) != text.count {
            let message = errnoText()
            close(fd)
            throw RecorderLockError(databasePath: databasePath, reason: .cannotOpen(message))
        }
        return RecorderLock(fd: fd, lockPath: path, created: created)
    }

    /// The pid of the recorder recording into the database, or nil if none
    /// is (0 if one is but its pid could not be read yet).
    public static func holder(databasePath: String) -> Int32? {
        let fd = open(lockPath(databasePath: databasePath), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // A shared lock conflicts only with the recorder's exclusive one. A
        // recorder starting in this very moment would be refused, so release
        // it at once.
        var result: Int32
        repeat { result = flock(fd, LOCK_SH | LOCK_NB) } while result != 0 && errno == EINTR
        if result == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        return readPid(fd: fd) ?? 0
    }

    private static func readPid(fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[..<count], as: UTF8.self)
        return Int32(text.trimmingCharacters(in: " \n"))
    }
}

public struct RecorderLockError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        /// Another process holds the lock; its pid if the lock file names it.
        case heldBy(pid: Int32?)
        case cannotOpen(String)
    }
    public var databasePath: String
    public var reason: Reason

    public var description: String {
        switch reason {
        case let .heldBy(pid?):
            return "another pingem record (pid \(pid)) is already recording into \(databasePath); stop it first or use another --db."
        case .heldBy(nil):
            return "another pingem record is already recording into \(databasePath); stop it first or use another --db."
        case let .cannotOpen(message):
            return "cannot lock \(RecorderLock.lockPath(databasePath: databasePath)) (\(message)); check the folder's permissions or use another --db."
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var slice = self[...]
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return slice
    }
}
