// A target's name that stops resolving while the recorder runs, then
// resolves to a new address (a private /etc/hosts, rewritten in place: the
// bind mount follows the inode, so a rename would not be seen). While the
// name is gone its probes are rows with send_error -1, lost with error kind
// "unresolved"; the new address is in the report's addresses, and the
// recorder says each change once on stderr.
import Foundation
import Reports
import Testing
import TestSupport

extension Reliability {
    @Suite(needsRoot) struct Rename {
        let dir = TemporaryFolder()

        @Test func aNameThatVanishesIsUnresolvedLossThenItsNewAddressIsProbed() throws {
            let db = dir.file("rename.db")
            let hosts = dir.file("hosts")
            let name = "pingem-test-moving"
            func writeHosts(_ entry: String?) throws {
                let text = "127.0.0.1 localhost\n::1 localhost\n" + (entry.map { "\($0) \(name)\n" } ?? "")
                let file = try #require(FileHandle(forWritingAtPath: hosts))
                try file.truncate(atOffset: 0)
                try file.write(contentsOf: Data(text.utf8))
                try file.close()
            }
            _ = FileManager.default.createFile(atPath: hosts, contents: nil)
            try writeHosts("127.0.0.1")
            let recorder = try Recorder(["web=\(name)", "--interval", "50ms", "--flush", "200ms",
                                         "--resolve-every", "300ms", "--db", db],
                                        logPath: dir.file("rename.log"), hosts: hosts)
            #expect(waitUntil { (try? sqlInt(db, "SELECT count(*) FROM probe WHERE rtt_ns IS NOT NULL")) ?? 0 >= 10 })
            try writeHosts(nil)
            #expect(waitUntil { (try? sqlInt(db, "SELECT count(*) FROM probe WHERE send_error = -1")) ?? 0 >= 10 })
            try writeHosts("127.0.0.2")
            #expect(waitUntil { (try? sqlInt(db, """
                SELECT count(*) FROM probe WHERE rtt_ns IS NOT NULL
                AND sent_ns > (SELECT max(sent_ns) FROM probe WHERE send_error = -1)
                """)) ?? 0 >= 10 })
            #expect(recorder.stop(SIGINT) == 0, "\(recorder.log)")

            // The recorder said each change once.
            #expect(recorder.logLines(containing: "\(name) resolved to 127.0.0.1").count == 1, "\(recorder.log)")
            #expect(recorder.logLines(containing: "\(name) does not resolve").count == 1, "\(recorder.log)")
            #expect(recorder.logLines(containing: "\(name) does not resolve").first?.contains("count as lost") == true)
            #expect(recorder.logLines(containing: "\(name) resolves again, to 127.0.0.2").count == 1, "\(recorder.log)")

            // The stored rows: answered at the first address, then one run
            // of unresolved rows, then answered at the second.
            let rows = try sql(db, "SELECT sent_ns, ifnull(rtt_ns, ''), ifnull(send_error, '') FROM probe ORDER BY sent_ns")
            let kinds = rows.map { $0[2] == "-1" ? "u" : ($0[1].isEmpty ? "n" : "r") }.joined()
            let unresolved = kinds.filter { $0 == "u" }.count
            let runs = kinds.split(separator: "u", omittingEmptySubsequences: true)
            #expect(unresolved >= 10 && kinds.contains("r" + String(repeating: "u", count: unresolved) + "r"),
                    "not one run of unresolved probes between answered ones: \(kinds)")
            #expect(runs.count == 2)
            // Only the last probe may lack its reply (sent just before the signal).
            #expect(!kinds.dropLast().contains("n"), "\(kinds)")
            #expect(try sql(db, "SELECT address FROM address ORDER BY since_ns").map { $0[0] } == ["127.0.0.1", "127.0.0.2"])
            let switchedAt = try sqlInt(db, "SELECT since_ns FROM address WHERE address = '127.0.0.2'")
            let lastUnresolved = try sqlInt(db, "SELECT max(sent_ns) FROM probe WHERE send_error = -1")
            #expect(lastUnresolved < switchedAt)

            let session = try #require(try sessions(db).first)
            let r = try report(db, since: session.startedNs, until: session.stoppedNs!)
            let web = try #require(r.targets.first { $0.target == "web" })
            #expect(web.addresses == ["127.0.0.1", "127.0.0.2"])
            #expect(web.summary.sent == rows.count)
            #expect(web.summary.lost == unresolved && web.summary.errors == unresolved)
            #expect(web.summary.errorKinds == ["unresolved": unresolved])
            #expect(web.summary.received + web.summary.lost + web.summary.unknown == rows.count)
        }
    }
}
