// One recorder per database: `<db>.lock`, held with flock(2) for the life of
// the recording process. flock locks belong to the open file description, so
// the kernel drops the lock when the process dies, however it dies: a stale
// lock file is harmless, and the pid in it is only for the message.
//
// (flock, not SQLite's own locks: a recorder holds no SQLite lock between
// batches, and readers must not be locked out at all.)

#if canImport(Glibc)
import Glibc  // O_ and LOCK_ flags, mode_t
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
        if created { try? System.unlink(lockPath) }
    }

    deinit {
        // Closing the last descriptor of the description releases the lock.
        try? System.close(fd)
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
        let fd: Int32
        do {
            do {
                fd = try System.open(path, flags: O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, permissions: permissions)
            } catch where error.errno == EEXIST {
                created = false
                fd = try System.open(path, flags: O_RDWR | O_CREAT | O_CLOEXEC, permissions: permissions)
            }
        } catch {
            throw RecorderLockError(databasePath: databasePath, reason: .cannotOpen(error.reason))
        }
        do {
            guard try System.tryLock(fd, operation: LOCK_EX) else {
                let holder = readPid(fd: fd)
                try? System.close(fd)
                throw RecorderLockError(databasePath: databasePath, reason: .heldBy(pid: holder))
            }
            // Truncate first: a longer pid from an earlier run must not show through.
            try System.truncate(fd, length: 0)
            try System.write(fd, Array("\(System.processID)\n".utf8), at: 0)
        } catch let error as SystemCallError {
            try? System.close(fd)
            throw RecorderLockError(databasePath: databasePath, reason: .cannotOpen(error.reason))
        }
        return RecorderLock(fd: fd, lockPath: path, created: created)
    }

    /// The pid of the recorder recording into the database, or nil if none
    /// is (0 if one is but its pid could not be read yet).
    public static func holder(databasePath: String) -> Int32? {
        guard let fd = try? System.open(lockPath(databasePath: databasePath), flags: O_RDONLY | O_CLOEXEC) else { return nil }
        defer { try? System.close(fd) }
        // A shared lock conflicts only with the recorder's exclusive one. A
        // recorder starting in this very moment would be refused, so release
        // it at once.
        if (try? System.tryLock(fd, operation: LOCK_SH)) == true {
            try? System.unlock(fd)
            return nil
        }
        return readPid(fd: fd) ?? 0
    }

    private static func readPid(fd: Int32) -> Int32? {
        guard let bytes = try? System.read(fd, count: 32, at: 0), !bytes.isEmpty else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
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
