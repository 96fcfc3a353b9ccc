// `pingem record --user NAME`: started as root only to open a raw socket,
// the recorder drops to NAME right after the sockets and the database are
// open. The order matters: setgroups and setgid need root, so they come
// before setuid, and a failed step is fatal (never record as root by
// accident). glibc applies set*id to every thread of the process.

import Glibc

struct Account {
    var name: String
    var uid: uid_t
    var gid: gid_t

    init(name: String) throws {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16_384)
        let code = getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        guard code == 0, result != nil else {
            throw RecorderError("--user: there is no user named \(name); give an existing user, e.g. --user nobody.")
        }
        self.name = name
        self.uid = entry.pw_uid
        self.gid = entry.pw_gid
    }

    /// Becomes the user for good (real, effective and saved ids).
    func become() throws {
        if getuid() == uid && geteuid() == uid { return }
        guard initgroups(name, gid) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw RecorderError("--user \(name): cannot switch to that user (\(String(cString: strerror(errno)))); start pingem as root to use --user.")
        }
        // setuid to a non-root user must not be undoable.
        if uid != 0 && setuid(0) == 0 {
            throw RecorderError("--user \(name): the switch to that user could be undone; refusing to record.")
        }
    }

    /// Throws unless the current user can write the database file, its -wal
    /// and -shm files (when they exist) and its folder (SQLite creates them
    /// there). access(2) checks the real ids, which `become` set.
    func requireWritable(database path: String) throws {
        let folder = path.lastIndex(of: "/").map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
        var checks = [(path, R_OK | W_OK), (folder, W_OK | X_OK)]
        for suffix in ["-wal", "-shm"] where access(path + suffix, F_OK) == 0 {
            checks.append((path + suffix, R_OK | W_OK))
        }
        for (file, mode) in checks where access(file, mode) != 0 {
            throw RecorderError("user \(name) cannot write \(file); give the database and its folder to that user (chown) or choose another --db.")
        }
    }
}
