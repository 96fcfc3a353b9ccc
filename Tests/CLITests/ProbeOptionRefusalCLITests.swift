// Probe options `pingem record` and `pingem watch` refuse before they open
// anything (issue 12): per-target options after a comma and the global -4,
// -6, --source, --interface and --tos. Each is a usage error (exit 64) in
// one sentence naming what is wrong, and no database is created.
import Foundation
import Testing
import TestSupport

@Suite struct ProbeOptionRefusalCLITests {
    static let refusals: [(arguments: [String], says: String)] = [
        (["a=192.0.2.1,ttl=5"], "'ttl=5' is not a target option; use 4, 6, source=ADDR, interface=NAME or tos=VALUE."),
        (["a,b=192.0.2.1"], "a label cannot contain a comma"),
        (["a=192.0.2.1,"], "has an empty option after a comma"),
        (["a=example.com,4,6"], "4 and 6 were both given"),
        (["a=192.0.2.1,source="], "the option source= needs a value"),
        (["a=192.0.2.1,tos=af44"], "tos 'af44' is not a TOS value"),
        (["a=192.0.2.1,interface=pingem-nosuch0"], "this machine has no network interface named 'pingem-nosuch0'"),
        (["a=192.0.2.1,source=192.0.2.254"], "source 192.0.2.254 is not an address of this machine"),
        (["a=192.0.2.1,6"], "192.0.2.1 is an IPv4 address but IPv6 was chosen"),
        (["-4", "-6", "example.com"], "-4 and -6 were both given"),
        (["-6", "192.0.2.1"], "192.0.2.1 is an IPv4 address but IPv6 was chosen"),
        (["--tos", "256", "192.0.2.1"], "--tos: tos '256' is not a TOS value"),
        (["--source", "home", "192.0.2.1"], "--source home is not an IP address"),
        (["--source", "192.0.2.254", "192.0.2.1"], "--source: source 192.0.2.254 is not an address of this machine"),
        (["--source", "::1", "192.0.2.1"], "192.0.2.1 is an IPv4 address but the source ::1 is IPv6"),
        (["-4", "--source", "::1", "example.com"], "source ::1 is an IPv6 address but IPv4 was chosen"),
        (["--interface", "pingem-nosuch0", "192.0.2.1"], "--interface: this machine has no network interface named 'pingem-nosuch0'"),
    ]

    @Test(arguments: ["record", "watch"], 0..<refusals.count)
    func refused(_ command: String, _ index: Int) throws {
        let (arguments, says) = Self.refusals[index]
        let dir = TemporaryFolder()
        let result = try run(pingemBinary, [command] + arguments + ["--db", dir.file("x.db")])
        #expect(result.status == 64, "\(arguments): \(result.stderr)")
        #expect(result.stderr.contains(says), "\(arguments): \(result.stderr)")
        #expect(result.stderr.split(separator: "\n").first?.hasSuffix(".") == true, "\(result.stderr)")
        #expect(!result.stderr.contains("Unknown error"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("x.db")))
    }

    @Test func everyOptionOfThisMachineIsAccepted() throws {
        let dir = TemporaryFolder()
        // --interval below the minimum: refused after the options were accepted.
        let result = try run(pingemBinary, ["record", "-4", "--source", "127.0.0.1", "--interface", "lo", "--tos", "ef",
                                            "a=127.0.0.1", "b=::1,source=::1,tos=0x28,6", "--interval", "1ms", "--db", dir.file("x.db")])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--interval must be at least 10ms."), "\(result.stderr)")
    }
}
