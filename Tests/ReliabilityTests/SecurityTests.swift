// Least privilege: --user drops root right after the sockets and the
// database are open (and refuses, before any probe, a database that user
// cannot write); what the recorder creates is the owner's only unless
// --umask says otherwise; the shipped systemd unit is valid and unprivileged.
import Foundation
import Reports
import Store
import Testing
import TestSupport

private func fileMode(_ path: String) -> mode_t? {
    var info = stat()
    return stat(path, &info) == 0 ? info.st_mode & 0o777 : nil
}

/// "Uid:" or "Gid:" of a running process: real, effective, saved, fs.
private func ids(_ pid: Int32, _ field: String) -> [String] {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix(field) } ?? ""
    return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().map(String.init)
}

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

extension Reliability {
    @Suite struct Security {
        let dir = TemporaryFolder()
        static let user = "nobody"

        @Test(needsRoot) func userDropsRootAfterOpeningSocketsAndDatabase() throws {
            guard let account = getpwnam(Self.user)?.pointee else {
                Issue.record("this machine has no user \(Self.user)")
                return
            }
            let folder = dir.file("owned")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
            let db = folder + "/u.db"
            // A database the user owns, in a folder the user owns.
            _ = try Database(path: db, mode: .readWrite)
            for path in [folder, db] { #expect(chown(path, account.pw_uid, account.pw_gid) == 0) }

            let recorder = try Recorder(["127.0.0.1", "--interval", "20ms", "--flush", "200ms", "--user", Self.user, "--db", db],
                                        logPath: dir.file("user.log"))
            #expect(waitUntil { (try? sqlInt(db, "SELECT count(*) FROM probe")) ?? 0 > 0 }, "\(recorder.log)")
            let uid = String(account.pw_uid), gid = String(account.pw_gid)
            #expect(ids(recorder.pid, "Uid:") == [uid, uid, uid, uid])
            #expect(ids(recorder.pid, "Gid:") == [gid, gid, gid, gid])
            #expect(ids(recorder.pid, "CapEff:") == ["0000000000000000"])
            var lockInfo = stat()
            #expect(stat(db + ".lock", &lockInfo) == 0 && lockInfo.st_uid == account.pw_uid, "the lock file stays root's")
            pause(500 * ms)
            #expect(recorder.stop(SIGTERM) == 0, "\(recorder.log)")
            let session = try #require(try sessions(db).first)
            #expect(session.stoppedNs != nil)
            #expect(try sql(db, "SELECT socket_kind FROM session") == [["raw"]])
            let r = try report(db, since: session.startedNs, until: session.stoppedNs!)
            let s = try #require(r.targets.first?.summary)
            #expect(s.sent > 20 && s.received == s.sent && s.lost == 0)
        }

        @Test(needsRoot) func aDatabaseTheUserCannotWriteIsRefusedBeforeAnyProbe() throws {
            let db = dir.file("root.db")
            _ = try Database(path: db, mode: .readWrite)  // root's, 0600
            let recorder = try Recorder(["127.0.0.1", "--user", Self.user, "--db", db], logPath: dir.file("refused.log"))
            recorder.process.waitUntilExit()
            #expect(recorder.process.terminationStatus == 1)
            let lines = recorder.log.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains("user \(Self.user) cannot write \(db)"), "\(recorder.log)")
            #expect(try sqlInt(db, "SELECT count(*) FROM session") == 0)
            #expect(try sqlInt(db, "SELECT count(*) FROM probe") == 0)

            let unknown = try Recorder(["127.0.0.1", "--user", "no-such-user-pingem", "--db", db], logPath: dir.file("unknown.log"))
            unknown.process.waitUntilExit()
            #expect(unknown.process.terminationStatus == 1)
            #expect(unknown.log.contains("there is no user named no-such-user-pingem"))
        }

        @Test(needsRoot, arguments: [(nil, 0o600 as mode_t, 0o700 as mode_t), ("022", 0o644, 0o755), ("027", 0o640, 0o750)])
        func whatTheRecorderCreatesFollowsTheUmask(umask: String?, fileMode expected: mode_t, folderMode: mode_t) throws {
            let db = dir.file("a/b/m.db")
            let recorder = try Recorder(["127.0.0.1", "--interval", "50ms", "--db", db] + (umask.map { ["--umask", $0] } ?? []),
                                        logPath: dir.file("umask.log"))
            #expect(waitUntil { (try? sqlInt(db, "SELECT count(*) FROM probe")) ?? 0 > 0 }, "\(recorder.log)")
            #expect(fileMode(dir.file("a")) == folderMode)
            #expect(fileMode(dir.file("a/b")) == folderMode)
            for file in [db, db + "-wal", db + "-shm", db + ".lock"] {
                #expect(fileMode(file) == expected, "\(file): \(String(fileMode(file) ?? 0, radix: 8))")
            }
            #expect(recorder.stop(SIGINT) == 0)
        }

        @Test func theSystemdUnitIsValidAndUnprivileged() throws {
            let unit = try String(contentsOf: packageRoot.appendingPathComponent("contrib/pingem.service"), encoding: .utf8)
            let lines = Set(unit.split(separator: "\n").map(String.init))
            for required in ["AmbientCapabilities=CAP_NET_RAW", "CapabilityBoundingSet=CAP_NET_RAW", "DynamicUser=yes",
                             "StateDirectory=pingem", "ProtectSystem=strict", "NoNewPrivileges=yes", "KillSignal=SIGTERM",
                             "ExecStart=/usr/local/bin/pingem record --db /var/lib/pingem/pingem.db --targets-file /etc/pingem/targets $PINGEM_TARGETS",
                             "ExecReload=/bin/kill -HUP $MAINPID"] {
                #expect(lines.contains(required), "contrib/pingem.service lacks \(required)")
            }
            #expect(!unit.contains("User=root"))
            // systemd's own check, with ExecStart pointing at the built binary.
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else {
                print("systemd-analyze not installed: unit file checked by its lines only")
                return
            }
            let copy = dir.file("pingem.service")
            try unit.replacingOccurrences(of: "/usr/local/bin/pingem", with: pingemBinary)
                .write(toFile: copy, atomically: true, encoding: .utf8)
            let verify = try run("/usr/bin/systemd-analyze", ["verify", copy])
            #expect(verify.status == 0 && verify.stderr.isEmpty, "\(verify.stderr)")
        }
    }
}
