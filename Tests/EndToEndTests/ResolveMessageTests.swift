// What `pingem record` says about a name that does not resolve: the
// resolver's own reason, never an errno of -1 ("Unknown error -1" was the
// old text), and at start whether the name does not exist (a typo, said at
// once) or the resolver cannot answer yet. The namespace's own nsswitch.conf
// and resolv.conf decide the answer, so no query leaves the namespace.
import Foundation
import Glibc
import Testing

@Suite(.serialized) struct ResolveMessageTests {
    /// Records `target` for a moment in a namespace set up by `configure`,
    /// returns the recorder's stderr and the probes it stored.
    private func record(_ target: String, configure: (TestNamespace) throws -> Void) throws -> (log: String, unresolved: Int) {
        let namespace = try TestNamespace()
        defer { namespace.destroy() }
        try configure(namespace)
        let db = namespace.directory.appendingPathComponent("names.db").path
        let recorder = try namespace.start([pingemBinary, "record", target, "--db", db, "--interval", "100ms", "--flush", "200ms"],
                                           label: "record")
        usleep(1_500_000)
        recorder.signal(SIGINT)
        #expect(recorder.wait(timeout: 20) == 0, "\(recorder.stderr)")
        let dump = runCommand([pingemBinary, "dump", "--db", db])
        let unresolved = dump.stdout.split(separator: "\n").filter { $0.hasSuffix(",-1") }.count
        return (recorder.stderr, unresolved)
    }

    @Test func aNameThatDoesNotExistIsSaidOnceAtStartWithTheResolversReason() throws {
        let (log, unresolved) = try record("web=pingem-no-such-name") { namespace in
            // Only the namespace's hosts file is asked: the name is not in it.
            try namespace.writeEtc("nsswitch.conf", "hosts: files\n")
            try namespace.writeEtc("hosts", "127.0.0.1 localhost\n")
        }
        let lines = log.split(separator: "\n").filter { $0.contains("pingem-no-such-name does not resolve") }
        #expect(lines.count == 1, "\(log)")
        #expect(lines.first?.contains("(Name or service not known): no such name, check it for a typo") == true, "\(log)")
        #expect(!log.contains("Unknown error") && !log.contains("error -1"), "\(log)")
        #expect(log.contains("web: not probed while its name does not resolve"), "\(log)")
        // It is still probed as today: every slot a stored, unresolved probe.
        #expect(unresolved >= 5, "\(log)")
    }

    @Test func aResolverThatCannotAnswerIsNotCalledATypo() throws {
        let (log, unresolved) = try record("web=pingem-no-answer") { namespace in
            // A name server on the namespace's own loopback that is not
            // there: the query is refused at once (EAI_AGAIN).
            try namespace.writeEtc("nsswitch.conf", "hosts: files dns\n")
            try namespace.writeEtc("hosts", "127.0.0.1 localhost\n")
            try namespace.writeEtc("resolv.conf", "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
        }
        let lines = log.split(separator: "\n").filter { $0.contains("pingem-no-answer does not resolve") }
        #expect(lines.count == 1, "\(log)")
        #expect(lines.first?.contains("(Temporary failure in name resolution): the resolver cannot answer yet") == true, "\(log)")
        #expect(!log.contains("typo") && !log.contains("Unknown error") && !log.contains("error -1"), "\(log)")
        #expect(unresolved >= 5, "\(log)")
    }
}
