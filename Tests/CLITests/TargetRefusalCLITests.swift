// Targets `pingem record` refuses before it opens anything: a usage error
// (exit 64) in one sentence that names what is wrong.
import Foundation
import Testing
import TestSupport

@Suite struct TargetRefusalCLITests {
    @Test func aZoneNamingNoInterfaceIsAUsageErrorNamingIt() throws {
        let dir = TemporaryFolder()
        let result = try run(pingemBinary, ["record", "router=fe80::1%pingem-nosuch0", "--db", dir.file("x.db")])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("no network interface named 'pingem-nosuch0'"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("x.db")))
    }

    @Test func aZoneNamingAnInterfaceIsAccepted() throws {
        let dir = TemporaryFolder()
        // --interval below the minimum: refused after the target was accepted.
        let result = try run(pingemBinary, ["record", "fe80::1%lo", "--interval", "1ms", "--db", dir.file("x.db")])
        #expect(result.status == 64)
        #expect(!result.stderr.contains("interface"), "\(result.stderr)")
        #expect(result.stderr.contains("interval"), "\(result.stderr)")
    }
}
