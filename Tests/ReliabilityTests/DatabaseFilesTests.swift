// Database files pingem must refuse without changing them. The permission
// cases run pingem as nobody (65534): root ignores file modes. nobody needs
// a binary it can reach (a 0755 copy in a 0755 folder) and, for `record`,
// ICMP sockets: a namespace of this test with loopback up and
// ping_group_range open (that sysctl is per namespace; the host's is never
// touched). Each refusal is one sentence on stderr, exit 1, and the
// database's bytes and its folder's listing are as before (the recorder
// removes the lock file it created for a database it then refused).
import Foundation
import Testing
import TestSupport

extension Reliability {
    @Suite(needsRoot) struct DatabaseFiles {
        let dir = TemporaryFolder()

        static let nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

        /// A pingem database with a few hundred probes (several pages).
        static func recordHistory(_ db: String, in dir: TemporaryFolder) throws {
            let recorder = try Recorder(["127.0.0.1", "six=::1", "--interval", "10ms", "--flush", "100ms", "--db", db],
                                        logPath: dir.file("history.log"))
            _ = waitUntil { (try? sqlInt(db, "SELECT count(*) FROM probe")) ?? 0 >= 400 }
            #expect(recorder.stop(SIGINT) == 0)
            // Everything in the main file: the copies below are whole.
            _ = try sql(db, "PRAGMA wal_checkpoint(TRUNCATE)")
            try? FileManager.default.removeItem(atPath: db + "-wal")
            try? FileManager.default.removeItem(atPath: db + "-shm")
        }

        func listing(_ folder: String) -> Set<String> {
            Set((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
        }

        func bytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

        /// Runs pingem (as nobody in `namespace` when given) and checks a
        /// refusal: exit 1, one line on stderr holding `phrase`, no stdout.
        func expectRefusal(_ arguments: [String], binary: String, asNobody: Bool, namespace: String?,
                           phrase: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            var argv = (asNobody ? Self.nobody : []) + [binary] + arguments
            if let namespace { argv = ["/usr/sbin/ip", "netns", "exec", namespace] + argv }
            let r = try run(argv[0], Array(argv.dropFirst()))
            #expect(r.status == 1, "\(arguments): exit \(r.status), \(r.stderr)", sourceLocation: sourceLocation)
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1 && r.stderr.contains(phrase), "\(arguments): \(r.stderr)", sourceLocation: sourceLocation)
            #expect(r.stdout.isEmpty, sourceLocation: sourceLocation)
        }

        @Test func unwritableAndUnreadableFilesAreRefusedUnchangedAsAUser() throws {
            chmod(dir.url.path, 0o755)
            let binary = dir.file("pingem")
            try FileManager.default.copyItem(atPath: pingemBinary, toPath: binary)
            chmod(binary, 0o755)
            let history = dir.file("history.db")
            try Self.recordHistory(history, in: dir)
            let original = try #require(bytes(history))
            #expect(original.count >= 16 * 4096)

            let namespace = try NamespacePair(loopbackOnly: ())
            try must("/usr/sbin/ip", ["netns", "exec", namespace.a, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"])
            // nobody can record at all here: a fresh database in its own folder.
            let own = dir.file("own")
            try FileManager.default.createDirectory(atPath: own, withIntermediateDirectories: false)
            chown(own, 65534, 65534)
            let probe = try run("/usr/sbin/ip", ["netns", "exec", namespace.a, "/usr/bin/timeout", "--preserve-status", "-s", "INT", "1.5"]
                + Self.nobody + [binary, "record", "127.0.0.1", "--interval", "100ms", "--db", own + "/ok.db"])
            #expect(probe.status == 0, "nobody cannot record in the test namespace: \(probe.stderr)")
            #expect(try sqlInt(own + "/ok.db", "SELECT count(*) FROM probe") >= 10)

            // A read-only file in nobody's own folder.
            let roFile = dir.file("ro-file")
            try FileManager.default.createDirectory(atPath: roFile, withIntermediateDirectories: false)
            try original.write(to: URL(fileURLWithPath: roFile + "/a.db"))
            chown(roFile, 65534, 65534); chown(roFile + "/a.db", 65534, 65534); chmod(roFile + "/a.db", 0o444)
            try expectRefusal(["record", "127.0.0.1", "--db", roFile + "/a.db"], binary: binary, asNobody: true,
                              namespace: namespace.a, phrase: "\(roFile)/a.db cannot be opened")
            #expect(bytes(roFile + "/a.db") == original)
            #expect(listing(roFile) == ["a.db"])

            // A writable file in a folder nobody may not write (SQLite needs
            // the folder for the -wal and -shm files).
            let roFolder = dir.file("ro-folder")
            try FileManager.default.createDirectory(atPath: roFolder, withIntermediateDirectories: false)
            chmod(roFolder, 0o755)
            try original.write(to: URL(fileURLWithPath: roFolder + "/a.db"))
            chown(roFolder + "/a.db", 65534, 65534); chmod(roFolder + "/a.db", 0o600)
            try expectRefusal(["record", "127.0.0.1", "--db", roFolder + "/a.db"], binary: binary, asNobody: true,
                              namespace: namespace.a, phrase: roFolder)
            // ... and a new database there.
            try expectRefusal(["record", "127.0.0.1", "--db", roFolder + "/new.db"], binary: binary, asNobody: true,
                              namespace: namespace.a, phrase: roFolder)
            #expect(bytes(roFolder + "/a.db") == original)
            #expect(listing(roFolder) == ["a.db"])

            // A file nobody may not read, for report.
            let unreadable = dir.file("unreadable.db")
            try original.write(to: URL(fileURLWithPath: unreadable))
            chmod(unreadable, 0o600)
            try expectRefusal(["report", "--db", unreadable], binary: binary, asNobody: true, namespace: nil,
                              phrase: "\(unreadable) cannot be opened")
            #expect(bytes(unreadable) == original)
            #expect(!FileManager.default.fileExists(atPath: unreadable + "-wal"))
        }

        @Test func emptyAndTruncatedFilesAreRefusedUnchanged() throws {
            let history = dir.file("history.db")
            try Self.recordHistory(history, in: dir)
            let original = try #require(bytes(history))
            #expect(original.count >= 16 * 4096 && original.count % 4096 == 0)

            let empty = dir.file("empty.db")
            #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
            // Cut in the middle, on a page boundary, as a copy that stopped
            // halfway would be.
            let truncated = dir.file("truncated.db")
            let half = original.prefix(original.count / 4096 / 2 * 4096)
            try half.write(to: URL(fileURLWithPath: truncated))

            for (path, content, reportPhrase, recordPhrase) in [
                (empty, Data(), "holds no pingem data yet", "is an empty file"),
                (truncated, Data(half), "is damaged or truncated", "is damaged or truncated"),
            ] {
                try expectRefusal(["report", "--db", path, "--last", "1h"], binary: pingemBinary, asNobody: false,
                                  namespace: nil, phrase: "\(path) \(reportPhrase)")
                try expectRefusal(["record", "127.0.0.1", "--db", path], binary: pingemBinary, asNobody: false,
                                  namespace: nil, phrase: "\(path) \(recordPhrase)")
                #expect(bytes(path) == content, "\(path) changed")
                #expect(!FileManager.default.fileExists(atPath: path + "-wal"), "\(path)-wal left")
                #expect(!FileManager.default.fileExists(atPath: path + ".lock"), "\(path).lock left")
            }
        }
    }
}
