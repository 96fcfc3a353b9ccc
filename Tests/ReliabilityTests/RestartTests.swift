// Restarts with a changed target list, and a name that resolves to a new
// address after a restart: history is kept per target, each target's
// coverage is the time it was probed, and the address change is in the report.
import Foundation
import Reports
import Testing
import TestSupport

extension Reliability {
    @Suite(needsRoot) struct Restart {
        let dir = TemporaryFolder()

        @Test func historyIsKeptPerTargetAcrossChangedTargetsAndAddresses() throws {
            let db = dir.file("restart.db")
            let hosts = dir.file("hosts")
            // Run 1: web -> 127.0.0.1, plus six; run 2: web -> 127.0.0.2 (the
            // name moved), six dropped, new target seven.
            let runs: [(String, [String])] = [
                ("127.0.0.1", ["web=pingem-test-web", "six=::1"]),
                ("127.0.0.2", ["web=pingem-test-web", "seven=127.0.0.7"]),
            ]
            for (i, (address, targets)) in runs.enumerated() {
                try "127.0.0.1 localhost\n::1 localhost\n\(address) pingem-test-web\n"
                    .write(toFile: hosts, atomically: true, encoding: .utf8)
                let recorder = try Recorder(targets + ["--interval", "50ms", "--flush", "200ms", "--db", db],
                                            logPath: dir.file("restart-\(i).log"), hosts: hosts)
                pause(1200 * ms)
                #expect(recorder.stop(SIGINT) == 0, "\(recorder.log)")
                #expect(recorder.logLines(containing: "pingem-test-web resolved to \(address)").count == 1, "\(recorder.log)")
            }
            let all = try sessions(db)
            #expect(all.count == 2)
            let until = all[1].stoppedNs!
            let r = try report(db, since: all[0].startedNs, until: until)
            let byName = Dictionary(uniqueKeysWithValues: r.targets.map { ($0.target, $0) })
            #expect(Set(byName.keys) == ["web", "six", "seven"])
            let web = try #require(byName["web"]), six = try #require(byName["six"]), seven = try #require(byName["seven"])
            #expect(web.addresses == ["127.0.0.1", "127.0.0.2"])
            #expect(six.addresses == ["::1"] && seven.addresses == ["127.0.0.7"])
            // web's history is both runs; six's only the first, seven's only the second.
            func stored(_ name: String, _ session: Int) throws -> Int {
                let s = all[session]
                let end = session + 1 < all.count ? all[session + 1].startedNs : until + 1
                return Int(try sqlInt(db, """
                    SELECT count(*) FROM probe JOIN target ON target.id = probe.target_id
                    WHERE target.name = '\(name)' AND sent_ns >= \(s.startedNs) AND sent_ns < \(end)
                    """))
            }
            let web0 = try stored("web", 0), web1 = try stored("web", 1)
            let six0 = try stored("six", 0), six1 = try stored("six", 1)
            let seven0 = try stored("seven", 0), seven1 = try stored("seven", 1)
            #expect(web.summary.sent == web0 + web1 && web0 > 10 && web1 > 10)
            #expect(six.summary.sent == six0 && six1 == 0)
            #expect(seven.summary.sent == seven1 && seven0 == 0)
            for t in r.targets {
                #expect(t.summary.lost == 0 && t.summary.unknown == 0 && t.outages.isEmpty, "\(t.target)")
            }
            // Coverage is the time each target was probed: six and seven each
            // miss the other's run, web misses only the restart between them.
            let span = Double(until - all[0].startedNs)
            func covered(_ s: SessionRow) -> Double { Double(s.stoppedNs! - s.startedNs) / span }
            #expect(abs(six.summary.coverage - covered(all[0])) < 1e-4)
            #expect(abs(seven.summary.coverage - covered(all[1])) < 1e-4)
            #expect(abs(web.summary.coverage - covered(all[0]) - covered(all[1])) < 1e-4)
            #expect(web.summary.coverage < 1)
        }
    }
}
