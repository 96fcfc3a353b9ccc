// The per-target option syntax, `[label=]host[,option...]`: every option,
// every refusal, and how a target's own options sit over the global flags.
// TargetSpec(parsing:) is the one parser for command-line targets and lines
// of a targets file alike.
@testable import Recorder
import Testing

@Suite struct TargetOptionsTests {
    private func spec(_ text: String) throws -> TargetSpec { try TargetSpec(parsing: text) }

    private func refusal(_ text: String) -> String {
        do {
            _ = try TargetSpec(parsing: text)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    @Test func aPlainTargetHasNoOptions() throws {
        let s = try spec("home=192.0.2.1")
        #expect(s.label == "home" && s.host == "192.0.2.1" && s.options == ProbeOptions())
        #expect(try spec("example.com").options == ProbeOptions())
    }

    @Test func everyOptionIsRead() throws {
        #expect(try spec("gw=example.com,4").options.family == .v4)
        #expect(try spec("example.com,6").options.family == .v6)
        #expect(try spec("a=192.0.2.1,interface=lo").options.interface == "lo")
        #expect(try spec("a=127.0.0.1,source=127.0.0.1").options.source == IPAddress(parsing: "127.0.0.1"))
        #expect(try spec("a=::1,source=::1").options.source == IPAddress(parsing: "::1"))
        #expect(try spec("a=192.0.2.1,tos=ef").options.tos == 0xb8)
        let all = try spec("isp=example.com,4,source=127.0.0.1,interface=lo,tos=0x28")
        #expect(all.options == ProbeOptions(family: .v4, source: IPAddress(parsing: "127.0.0.1"), interface: "lo", tos: 0x28))
        #expect(all.name == "isp" && all.host == "example.com")
    }

    @Test func theHeadIsSplitAtTheLastEqualsSign() throws {
        let s = try spec("a=b=192.0.2.1,tos=8")
        #expect(s.label == "a=b" && s.host == "192.0.2.1" && s.options.tos == 8)
        // A zone is part of the host, not an option.
        #expect(try spec("router=fe80::1%lo,6").host == "fe80::1%lo")
    }

    @Test func tosValues() throws {
        let cases: [(String, UInt8)] = [
            ("0", 0), ("255", 255), ("184", 184), ("0xb8", 0xb8), ("0XFF", 0xff), ("ef", 0xb8), ("EF", 0xb8),
            ("af11", 0x28), ("af12", 0x30), ("af13", 0x38), ("af21", 0x48), ("af23", 0x58), ("af31", 0x68),
            ("af41", 0x88), ("af42", 0x90), ("af43", 0x98), ("cs0", 0), ("cs1", 0x20), ("cs6", 0xc0), ("cs7", 0xe0),
            ("le", 0x04), ("va", 0xb0),
        ]
        for (text, byte) in cases {
            #expect(try ProbeOptions.parseTOS(text, where: "--tos") == byte, "\(text)")
        }
        for bad in ["256", "-1", "+5", "0x", "0x100", "af44", "cs8", "ef1", "", "1.5", " 8"] {
            #expect(throws: RecorderError.self, "\(bad)") { try ProbeOptions.parseTOS(bad, where: "--tos") }
        }
        #expect(refusal("a=192.0.2.1,tos=af50").contains("tos 'af50' is not a TOS value"))
    }

    @Test func everyRefusalIsOneSentenceNamingWhatToDo() {
        let cases: [(String, String)] = [
            ("a=192.0.2.1,ttl=5", "'ttl=5' is not a target option"),
            ("a=192.0.2.1,8", "'8' is not a target option; use 4, 6"),
            ("a=192.0.2.1,4=x", "'4=x' is not a target option"),
            ("a,b=192.0.2.1", "a label cannot contain a comma"),
            ("a=192.0.2.1,", "has an empty option after a comma"),
            ("a=192.0.2.1,,4", "has an empty option after a comma"),
            ("a=example.com,4,6", "4 and 6 were both given"),
            ("a=192.0.2.1,source=", "source= needs a value, as in source=192.0.2.10"),
            ("a=192.0.2.1,interface=", "interface= needs a value"),
            ("a=192.0.2.1,tos=", "tos= needs a value"),
            ("a=192.0.2.1,source=home", "source=home is not an IP address"),
            ("a=192.0.2.1,interface=pingem-nosuch0", "no network interface named 'pingem-nosuch0'"),
            ("a=192.0.2.1,source=192.0.2.254", "source 192.0.2.254 is not an address of this machine"),
            ("a=192.0.2.1,6", "192.0.2.1 is an IPv4 address but IPv6 was chosen"),
            ("a=::1,4", "::1 is an IPv6 address but IPv4 was chosen"),
            ("a=192.0.2.1,source=::1", "the source ::1 is IPv6"),
            ("a=example.com,4,source=::1", "source ::1 is an IPv6 address but IPv4 was chosen"),
            (",4", "an empty target was given"),
        ]
        for (text, expected) in cases {
            let said = refusal(text)
            #expect(said.contains(expected), "\(text): \(said)")
            #expect(said.hasSuffix("."), "\(text): \(said)")
            #expect(!said.dropLast().contains(". "), "one sentence: \(said)")
        }
    }

    @Test func aTargetsOwnOptionsWinOverTheGlobalOnes() throws {
        let global = ProbeOptions(family: .v4, interface: "lo", tos: 0x20)
        let mine = try spec("gw6=example.com,6,tos=ef").withDefaults(global)
        #expect(mine.options == ProbeOptions(family: .v6, interface: "lo", tos: 0xb8))
        let plain = try spec("example.com").withDefaults(global)
        #expect(plain.options == global)
        // Its own source brings its family, over the global -4.
        let own = try spec("a=example.com,source=::1").withDefaults(global)
        #expect(own.options.family == nil && own.options.requiredFamily == .v6)
    }

    @Test func theGlobalFamilyRefusesALiteralOfTheOtherOne() throws {
        #expect(throws: RecorderError.self) { try spec("::1").withDefaults(ProbeOptions(family: .v4)) }
        #expect(throws: RecorderError.self) {
            try spec("a=example.com,6").withDefaults(ProbeOptions(source: IPAddress(parsing: "127.0.0.1")))
        }
        #expect(try spec("::1").withDefaults(ProbeOptions(family: .v6)).options.family == .v6)
    }

    @Test func pathsGroupTargetsBySourceInterfaceAndTOS() throws {
        let options = RecordOptions(
            targets: try ["a=192.0.2.1", "b=192.0.2.1,interface=lo", "c=example.com,6", "d=192.0.2.3,tos=ef", "e=192.0.2.4,interface=lo"]
                .map(spec),
            intervalNs: 1_000_000_000, payloadSize: 56, flushNs: 1_000_000_000, databasePath: "/nonexistent", verbose: false,
            version: "test")
        let (paths, ofTarget) = options.paths(of: try options.probedTargets())
        #expect(paths == [.plain, ProbePath(interface: "lo"), ProbePath(tos: 0xb8)])
        #expect(ofTarget == [0, 1, 0, 2, 1])
    }

    @Test func aNameLackingTheChosenFamilyIsSaidSo() throws {
        let s = try spec("gw6=localhost,6")
        #expect(s.families(of: [.v4, .v6]) == [.v6])
        #expect(s.lacks(.v6, then: "x") == "gw6: localhost has no IPv6 address (IPv6 was chosen); x")
        #expect(try spec("localhost").families(of: [.v4, .v6]) == [.v4, .v6])
        #expect(try spec("a=localhost,source=127.0.0.1").families(of: [.v4, .v6]) == [.v4])
    }
}
