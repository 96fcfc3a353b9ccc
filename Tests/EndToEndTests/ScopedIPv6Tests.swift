// A link-local IPv6 target, the home router's usual address, given with its
// zone: fe80::2%veth0. Two namespaces the test creates are joined by a veth
// pair; the far side's kernel answers echo. The zone must survive parsing,
// sending (sin6_scope_id), matching the replies and storage, over a raw and
// a datagram socket; before, the zone was dropped and every send failed.
import Foundation
import Glibc
import Testing

@Suite(.serialized) struct ScopedIPv6Tests {
    @Test(arguments: [SocketKindCase.raw, .datagram])
    func aLinkLocalTargetIsProbedThroughItsInterface(_ kind: SocketKindCase) throws {
        // Ping sockets only where the test opens them: otherwise root gets raw.
        let near = try TestNamespace(pingSockets: kind == .datagram)
        defer { near.destroy() }
        let far = near.name + "-far"
        _ = runCommand(["ip", "netns", "del", far])
        defer { _ = runCommand(["ip", "netns", "del", far]) }
        for command in [
            ["ip", "netns", "add", far],
            ["ip", "-n", near.name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", far],
            // nodad: usable at once, not tentative for a second.
            ["ip", "-n", near.name, "addr", "add", "fe80::1/64", "dev", "veth0", "nodad"],
            ["ip", "-n", far, "addr", "add", "fe80::2/64", "dev", "veth1", "nodad"],
            ["ip", "-n", near.name, "link", "set", "veth0", "up"],
            ["ip", "-n", far, "link", "set", "veth1", "up"],
        ] {
            let result = runCommand(command)
            try #require(result.status == 0, "\(command.joined(separator: " ")): \(result.stderr)")
        }
        let db = near.directory.appendingPathComponent("scoped.db").path
        let recorder = try near.start([pingemBinary, "record", "router=fe80::2%veth0", "--db", db,
                                       "--interval", "100ms", "--flush", "200ms"], label: "record")
        usleep(2_000_000)
        recorder.signal(SIGINT)
        #expect(recorder.wait(timeout: 20) == 0, "\(recorder.stderr)")
        #expect(!recorder.stderr.contains("sends failing"), "\(recorder.stderr)")

        func query(_ sql: String) -> String {
            runCommand(["sqlite3", db, sql]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(query("SELECT socket_kind FROM session") == kind.rawValue)
        // Stored with its zone, in the address history and as the target's host.
        #expect(query("SELECT address FROM address") == "fe80::2%veth0")
        #expect(query("SELECT host FROM target") == "fe80::2%veth0")
        let sent = Int(query("SELECT count(*) FROM probe")) ?? 0
        let answered = Int(query("SELECT count(*) FROM probe WHERE rtt_ns IS NOT NULL")) ?? 0
        #expect(sent >= 10 && answered >= sent - 2, "\(answered) of \(sent) answered: \(recorder.stderr)")
        // Every output shows the stored text.
        let report = runCommand([pingemBinary, "report", "--db", db, "--format", "json"])
        #expect(report.status == 0 && report.stdout.contains("fe80::2%veth0"), "\(report.stdout)\(report.stderr)")
    }
}

enum SocketKindCase: String, CustomTestStringConvertible, Sendable {
    case raw, datagram
    var testDescription: String { rawValue }
}
