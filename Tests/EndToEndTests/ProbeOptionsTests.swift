// The per-target and global probe options of issue 12, end to end in
// namespaces the tests create: the TOS byte and the source address the
// responder sees, -4/-6 on a name the namespace's own hosts file gives both
// families, and two uplinks (two veth pairs to two peer namespaces that both
// hold the target address) recorded by one recorder with interface= per
// target. Raw and datagram sockets both, where the kernel allows.
import Foundation
import Glibc
import Testing
import TestSupport
@testable import pingem_responder

@Suite(.serialized) struct ProbeOptionsTests {
    /// Records `arguments` for `seconds` inside `namespace`; returns stderr.
    private func record(_ namespace: TestNamespace, _ arguments: [String], db: String, seconds: Double = 2) throws -> String {
        let recorder = try namespace.start([pingemBinary, "record"] + arguments + ["--db", db, "--interval", "100ms", "--flush", "200ms"],
                                           label: "record")
        usleep(UInt32(seconds * 1_000_000))
        recorder.signal(SIGINT)
        #expect(recorder.wait(timeout: 20) == 0, "\(recorder.stderr)")
        return recorder.stderr
    }

    private func query(_ db: String, _ sql: String) -> String {
        runCommand(["sqlite3", db, sql]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Each target's sent, received and duplicates, as the report judges them.
    private func targetSummaries(_ db: String) throws -> [String: (sent: Int, received: Int, duplicates: Int)] {
        let report = runCommand([pingemBinary, "report", "--db", db, "--format", "json", "--last", "1h"])
        let object = try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any]
        var result: [String: (sent: Int, received: Int, duplicates: Int)] = [:]
        for target in object?["targets"] as? [[String: Any]] ?? [] {
            let summary = target["summary"] as? [String: Any] ?? [:]
            result[target["target"] as? String ?? "?"] = (summary["sent"] as? Int ?? 0, summary["received"] as? Int ?? 0,
                                                          summary["duplicates"] as? Int ?? -1)
        }
        return result
    }

    private func ip(_ arguments: [String]) throws {
        let result = runCommand(["ip"] + arguments)
        try #require(result.status == 0, "ip \(arguments.joined(separator: " ")): \(result.stderr)")
    }

    @Test(arguments: [SocketKindCase.raw, .datagram])
    func theResponderSeesTheRequestedTOSAndSource(_ kind: SocketKindCase) throws {
        let namespace = try TestNamespace(pingSockets: kind == .datagram)
        defer { namespace.destroy() }
        // Second local addresses to send from; replies to them come back in.
        // Neither is what the kernel picks unasked: a secondary IPv4 address,
        // and a deprecated IPv6 one (RFC 6724 rule 3), which bind still takes.
        try ip(["-n", namespace.name, "addr", "add", "198.18.0.9/24", "dev", "tun0"])
        try ip(["-n", namespace.name, "addr", "add", "fd00:18::9/64", "dev", "tun0", "nodad", "preferred_lft", "0"])
        let targets = ["198.18.0.2", "fd00:18::2", "198.18.0.3", "fd00:18::3", "198.18.0.4", "198.18.0.5"]
        let responder = try namespace.startResponder(targets.map { (address: String) -> ResponderDestination in .init(address: address, behaviour: .clean) })
        let db = namespace.directory.appendingPathComponent("tos.db").path
        let log = try record(namespace, [
            "ef4=198.18.0.2,tos=ef", "af6=fd00:18::2,tos=af11", "src4=198.18.0.3,source=198.18.0.9",
            "src6=fd00:18::3,source=fd00:18::9,tos=0x20", "zero=198.18.0.4,tos=0", "global=198.18.0.5", "--tos", "184",
        ], db: db)
        let lines = try responder.stop()
        #expect(query(db, "SELECT socket_kind FROM session") == kind.rawValue)

        // Per destination: the TOS byte / traffic class and source seen.
        let expected: [String: (tos: Int, source: String)] = [
            "198.18.0.2": (0xb8, "198.18.0.1"), "fd00:18::2": (0x28, "fd00:18::1"), "198.18.0.3": (0xb8, "198.18.0.9"),
            "fd00:18::3": (0x20, "fd00:18::9"), "198.18.0.4": (0, "198.18.0.1"), "198.18.0.5": (0xb8, "198.18.0.1"),
        ]
        for (destination, want) in expected {
            let seen = lines.filter { $0.destination == destination }
            #expect(seen.count >= 10, "\(destination): \(seen.count) requests; \(log)")
            #expect(Set(seen.map(\.tos)) == [want.tos], "\(destination): \(Set(seen.map(\.tos)))")
            #expect(Set(seen.map(\.source)) == [want.source], "\(destination): \(Set(seen.map(\.source)))")
        }
        // Every target answered (the replies reached each path's socket),
        // each reply counted once: every unbound raw socket sees every
        // path's replies, and only the path that sent a probe counts it.
        let summaries = try targetSummaries(db)
        #expect(summaries.keys.sorted() == ["af6", "ef4", "global", "src4", "src6", "zero"], "\(log)")
        for (name, summary) in summaries {
            #expect(summary.sent >= 10 && summary.received >= summary.sent - 2 && summary.duplicates == 0, "\(name): \(summary)\n\(log)")
        }
        // Stored per session and target, shown by the report.
        #expect(query(db, """
            SELECT target.name, coalesce(source, '-'), coalesce(interface, '-'), tos FROM session_target
            JOIN target ON target.id = session_target.target_id WHERE target.name IN ('src6', 'ef4') ORDER BY target.name
            """) == "ef4|-|-|184\nsrc6|fd00:18::9|-|32")
        let report = runCommand([pingemBinary, "report", "--db", db, "--format", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any]
        let src6 = (object?["targets"] as? [[String: Any]])?.first { $0["target"] as? String == "src6" }
        #expect(src6?["source"] as? String == "fd00:18::9" && src6?["tos"] as? Int == 32, "\(report.stdout)")
        let table = runCommand([pingemBinary, "report", "--db", db])
        #expect(table.stdout.contains("fd00:18::3 (from fd00:18::9, tos 0x20)"), "\(table.stdout)")
    }

    @Test func minus4AndMinus6ChooseTheFamilyOfADualStackName() throws {
        let namespace = try TestNamespace()
        defer { namespace.destroy() }
        try namespace.writeEtc("nsswitch.conf", "hosts: files\n")
        try namespace.writeEtc("hosts", "127.0.0.1 localhost\n198.18.0.2 dual.test\nfd00:18::2 dual.test\n198.18.0.3 only4.test\n")
        let responder = try namespace.startResponder(["198.18.0.2", "fd00:18::2", "198.18.0.3"].map { (address: String) -> ResponderDestination in
            .init(address: address, behaviour: .clean)
        })
        let db = namespace.directory.appendingPathComponent("family.db").path
        let first = try record(namespace, ["v4=dual.test,4", "v6=dual.test,6", "auto=dual.test", "gone6=only4.test,6"], db: db)
        #expect(first.contains("v4: dual.test resolved to 198.18.0.2 (IPv4)"), "\(first)")
        #expect(first.contains("v6: dual.test resolved to fd00:18::2 (IPv6)"), "\(first)")
        // Without a choice the resolver's first answer, and the log says which.
        #expect(first.contains("auto: dual.test resolved to 198.18.0.2 (IPv4)") || first.contains("auto: dual.test resolved to fd00:18::2 (IPv6)"),
                "\(first)")
        let lacking = first.split(separator: "\n").filter { $0.contains("only4.test has no IPv6 address") }
        #expect(lacking.count == 1 && lacking[0].contains("gone6: only4.test has no IPv6 address (IPv6 was chosen)"), "\(first)")
        #expect(!first.contains("Unknown error") && !first.contains("error -1"), "\(first)")
        // Probed as an unresolved name: every slot a stored probe, none sent.
        #expect(Int(query(db, "SELECT count(*) FROM probe JOIN target ON target.id = probe.target_id WHERE name = 'gone6' AND send_error = -1")) ?? 0 >= 10)
        #expect(query(db, "SELECT count(*) FROM address JOIN target ON target.id = address.target_id WHERE name = 'gone6'") == "0")

        // The global flag for every name, a target's own choice over it.
        let second = try record(namespace, ["-6", "d6=dual.test", "d4=dual.test,4"], db: db)
        #expect(second.contains("d6: dual.test resolved to fd00:18::2 (IPv6)") && second.contains("d4: dual.test resolved to 198.18.0.2 (IPv4)"),
                "\(second)")
        let lines = try responder.stop()
        #expect(lines.filter { $0.destination == "198.18.0.3" }.isEmpty)
        #expect(Set(lines.map(\.family)) == [4, 6])
        #expect(query(db, """
            SELECT name || '=' || address FROM address JOIN target ON target.id = address.target_id
            WHERE name IN ('v4', 'v6', 'd4', 'd6') ORDER BY name
            """) == "d4=198.18.0.2\nd6=fd00:18::2\nv4=198.18.0.2\nv6=fd00:18::2")
    }

    @Test(arguments: [SocketKindCase.raw, .datagram])
    func twoUplinksEachTargetByItsOwnInterface(_ kind: SocketKindCase) throws {
        let near = try TestNamespace(pingSockets: kind == .datagram)
        defer { near.destroy() }
        let peers = [near.name + "-a", near.name + "-b"]
        for peer in peers { _ = runCommand(["ip", "netns", "del", peer]) }
        defer { for peer in peers { _ = runCommand(["ip", "netns", "del", peer]) } }
        for (i, peer) in peers.enumerated() {
            let n = i + 1
            for command in [
                ["netns", "add", peer],
                ["-n", near.name, "link", "add", "up\(n)", "type", "veth", "peer", "name", "down\(n)", "netns", peer],
                ["-n", near.name, "addr", "add", "10.\(n).0.1/24", "dev", "up\(n)"],
                ["-n", peer, "addr", "add", "10.\(n).0.2/24", "dev", "down\(n)"],
                // Both peers hold the target: only the interface decides which one answers.
                ["-n", peer, "addr", "add", "192.0.2.1/32", "dev", "lo"],
                ["-n", peer, "link", "set", "lo", "up"],
                ["-n", peer, "link", "set", "down\(n)", "up"],
                ["-n", near.name, "link", "set", "up\(n)", "up"],
                // The route by up1 is preferred: without its interface a probe would leave by it.
                ["-n", near.name, "route", "add", "192.0.2.1/32", "via", "10.\(n).0.2", "dev", "up\(n)", "metric", "\(n * 10)"],
            ] { try ip(command) }
        }
        // Replies from 192.0.2.1 on up2 are not by the preferred route: no reverse-path filter in our namespace.
        for device in ["all", "default", "up1", "up2"] {
            _ = near.run(["sysctl", "-w", "net.ipv4.conf.\(device).rp_filter=0"])
        }
        let db = near.directory.appendingPathComponent("uplinks.db").path
        // No path rounds: the peers' InEchos counter below is the targets' own probes alone.
        let log = try record(near, ["isp1=192.0.2.1,interface=up1", "isp2=192.0.2.1,interface=up2", "--path-interval", "0"],
                             db: db, seconds: 3)
        #expect(query(db, "SELECT socket_kind FROM session") == kind.rawValue)
        #expect(!log.contains("sends failing"), "\(log)")

        func echoRequestsSeen(_ peer: String) -> Int {
            // /proc/net/snmp: an "Icmp:" line of names, then one of values.
            let snmp = runCommand(["ip", "netns", "exec", peer, "cat", "/proc/net/snmp"]).stdout
                .split(separator: "\n").filter { $0.hasPrefix("Icmp:") }.map { $0.split(separator: " ") }
            guard snmp.count >= 2, let column = snmp[0].firstIndex(of: "InEchos") else { return -1 }
            return Int(snmp[1][column]) ?? -1
        }
        for (i, peer) in peers.enumerated() {
            let name = "isp\(i + 1)"
            let sent = Int(query(db, "SELECT count(*) FROM probe JOIN target ON target.id = probe.target_id WHERE name = '\(name)'")) ?? 0
            let answered = try targetSummaries(db)[name]?.received ?? 0
            let seen = echoRequestsSeen(peer)
            // Each peer saw exactly its own target's probes (the last one
            // may still have been on its way at the stop), and they answered.
            #expect(sent >= 15 && abs(seen - sent) <= 1, "\(peer) saw \(seen) of \(name)'s \(sent): \(log)")
            #expect(answered >= sent - 2, "\(name): \(answered) of \(sent) answered: \(log)")
        }
        #expect(query(db, """
            SELECT name || '=' || interface FROM session_target JOIN target ON target.id = session_target.target_id ORDER BY name
            """) == "isp1=up1\nisp2=up2")
    }
}
