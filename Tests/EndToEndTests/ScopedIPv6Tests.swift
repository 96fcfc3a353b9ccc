// A link-local IPv6 target, the home router's usual address, given with its
// zone: fe80::2%veth0. Two namespaces the test creates are joined by a veth
// pair; the far side's kernel answers echo. The zone must survive parsing,
// sending (sin6_scope_id), matching the replies and storage, over a raw and
// a datagram socket; before, the zone was dropped and every send failed.
import Foundation
import Glibc
import Testing
@testable import pingem_responder

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

extension ScopedIPv6Tests {
    @Test(arguments: [SocketKindCase.raw, .datagram])
    func aLinkLocalTargetBehindTheRespondersDeviceIsProbed(_ kind: SocketKindCase) throws {
        // The project's responder on tun0, answering for a link-local
        // address there: the probes leave through tun0 only because the
        // zone says so (sin6_scope_id), and the replies come back from it.
        let namespace = try TestNamespace(pingSockets: kind == .datagram)
        defer { namespace.destroy() }
        let added = runCommand(["ip", "-n", namespace.name, "addr", "add", "fe80::1/64", "dev", "tun0", "nodad"])
        try #require(added.status == 0, "\(added.stderr)")
        let responder = try namespace.startResponder([.init(address: "fe80::99", behaviour: .clean)])
        let db = namespace.directory.appendingPathComponent("tun-scoped.db").path
        let recorder = try namespace.start([pingemBinary, "record", "gw=fe80::99%tun0", "--db", db,
                                            "--interval", "100ms", "--flush", "200ms"], label: "record")
        usleep(2_000_000)
        recorder.signal(SIGINT)
        #expect(recorder.wait(timeout: 20) == 0, "\(recorder.stderr)")
        let log = try responder.stop()
        func query(_ sql: String) -> String {
            runCommand(["sqlite3", db, sql]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(query("SELECT socket_kind FROM session") == kind.rawValue)
        #expect(query("SELECT address FROM address") == "fe80::99%tun0")
        let sent = Int(query("SELECT count(*) FROM probe")) ?? 0
        let inRows = Int(query("SELECT count(*) FROM probe WHERE rtt_ns IS NOT NULL")) ?? 0
        let asReplyRows = Int(query("SELECT count(DISTINCT sent_ns) FROM reply")) ?? 0
        let answered = inRows + asReplyRows
        // Every request the responder saw came from a link-local address of
        // tun0 (the kernel picks one of its own there) to the target's, and
        // each was a probe the database holds.
        let ours: [ResponderLogLine] = log.filter { $0.run_id != nil }
        #expect(sent >= 10 && ours.count >= sent - 1 && ours.count <= sent, "\(ours.count) requests for \(sent) probes")
        let fromUs = ours.filter { line in line.destination == "fe80::99" && line.source.hasPrefix("fe80:") && line.action == "reply" }
        #expect(fromUs.count == ours.count, "\(ours.map { "\($0.source) -> \($0.destination) \($0.action)" })")
        #expect(answered >= ours.count - 2, "\(answered) answered of \(ours.count) answered by the responder")
    }
}

enum SocketKindCase: String, CustomTestStringConvertible, Sendable {
    case raw, datagram
    var testDescription: String { rawValue }
}
