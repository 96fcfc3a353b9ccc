// Real sockets, real kernel: loopback on the host, and network namespaces
// this test creates (and deletes) for the datagram path and for ICMP
// errors from a router. No packet leaves the machine.
//
// Datagram ("ping") sockets need net.ipv4.ping_group_range to include our
// gid; that sysctl is per namespace and only changed inside our own.
// setns(2) moves only the calling thread, and a socket keeps the namespace
// it was created in, so sockets are opened on a short-lived thread that
// entered the namespace and then used from the test's own thread.

import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport
@testable import Recorder

@Suite(.serialized) struct WireSocketTests {
    static let payloadSize = 64

    // MARK: Host loopback

    @Test func hostLoopbackEcho() throws {
        let sockets: ICMPSockets
        do {
            sockets = try ICMPSockets.open(families: [.v4, .v6])
        } catch let error as ICMPPermissionError {
            try #require(getuid() != 0, "root must be able to open raw sockets: \(error)")
            try skip("no ICMP socket allowed for this user (\(error))")
        }
        defer { sockets.close() }
        // The host's ping_group_range is "1 0" here: datagram sockets are
        // refused and open must have fallen back to raw.
        let expected: SocketKind = Self.pingGroupAllows(gid: getgid()) ? .datagram : .raw
        #expect(sockets.kind == expected)
        var targets = [IPAddress(bytes: [127, 0, 0, 1])!]
        if sockets.families.contains(.v6) { targets.append(IPAddress(bytes: Array(repeating: 0, count: 15) + [1])!) }
        try Self.expectEchoes(sockets, targets: targets, runID: 11)
    }

    @Test func closedSocketsRefuseQuietly() throws {
        let sockets: ICMPSockets
        do {
            sockets = try ICMPSockets.open(families: [.v4])
        } catch let error as ICMPPermissionError {
            try skip("no ICMP socket allowed for this user (\(error))")
        }
        #expect(sockets.families == [.v4])
        // No IPv6 socket was asked for: sending there fails with an errno.
        #expect(sockets.sendEcho(to: IPAddress(bytes: Array(repeating: 0, count: 15) + [1])!, sequence: 1, payload: []) == EAFNOSUPPORT)
        sockets.close()
        sockets.close()   // idempotent
        #expect(sockets.sendEcho(to: IPAddress(bytes: [127, 0, 0, 1])!, sequence: 1, payload: []) == EBADF)
        #expect(sockets.receive(timeoutMilliseconds: 0).isEmpty)
    }

    @Test func openRefusedSaysHowToFixInOneSentence() {
        let text = ICMPPermissionError().description
        #expect(text.contains("sysctl -w net.ipv4.ping_group_range=\"0 2147483647\""))
        #expect(text.contains("setcap cap_net_raw+ep"))
        #expect(text.contains("root"))
        // One sentence: it ends with a period and no other sentence ends inside.
        #expect(text.hasSuffix(".") && !text.dropLast().contains(". "))
    }

    // MARK: Datagram sockets in a namespace

    @Test(needsNamespaces) func datagramEchoInNamespace() throws {
        let namespace = try WireNamespace.create("pingem-wire-\(getpid())-d")
        defer { namespace.delete() }
        try namespace.run("ip", "link", "set", "lo", "up")
        try namespace.run("sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647")
        let sockets = try namespace.openSockets(families: [.v4, .v6], kind: nil)
        defer { sockets.close() }
        #expect(sockets.kind == .datagram)
        #expect(sockets.families == [.v4, .v6])
        #expect(sockets.identifier(for: .v4) != 0 || sockets.identifier(for: .v6) != 0)
        try Self.expectEchoes(sockets, targets: [IPAddress(bytes: [127, 0, 0, 1])!,
                                                 IPAddress(bytes: Array(repeating: 0, count: 15) + [1])!], runID: 12)
        // No route in this namespace: the send fails at once with errno.
        #expect(sockets.sendEcho(to: IPAddress(bytes: [198, 18, 0, 1])!, sequence: 1, payload: []) == ENETUNREACH)
    }

    // MARK: ICMP errors from a router namespace

    /// client (10.200.0.1, fd00:200::1) -- veth -- router (10.200.0.2,
    /// fd00:200::2), and the router has "unreachable" routes for
    /// 198.18.0.0/24 and fd00:99::/64, so it answers our probes there with
    /// ICMP destination unreachable, quoting them.
    @Test(needsNamespaces, arguments: [SocketKind.datagram, .raw])
    func icmpErrorsFromRouter(kind: SocketKind) throws {
        let suffix = kind == .datagram ? "e" : "r"
        let client = try WireNamespace.create("pingem-wire-\(getpid())-\(suffix)c")
        defer { client.delete() }
        let router = try WireNamespace.create("pingem-wire-\(getpid())-\(suffix)r")
        defer { router.delete() }
        try client.run("ip", "link", "add", "wc", "type", "veth", "peer", "name", "wr", "netns", router.name)
        for (namespace, address, address6) in [(client, "10.200.0.1/24", "fd00:200::1/64"), (router, "10.200.0.2/24", "fd00:200::2/64")] {
            let device = namespace === client ? "wc" : "wr"
            try namespace.run("ip", "link", "set", "lo", "up")
            try namespace.run("ip", "addr", "add", address, "dev", device)
            try namespace.run("ip", "-6", "addr", "add", address6, "dev", device, "nodad")
            try namespace.run("ip", "link", "set", device, "up")
        }
        try client.run("ip", "route", "add", "default", "via", "10.200.0.2")
        try client.run("ip", "-6", "route", "add", "default", "via", "fd00:200::2")
        try client.run("sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647")
        try router.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        try router.run("sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
        try router.run("ip", "route", "add", "unreachable", "198.18.0.0/24")
        try router.run("ip", "-6", "route", "add", "unreachable", "fd00:99::/64")

        let sockets = try client.openSockets(families: [.v4, .v6], kind: kind)
        defer { sockets.close() }
        #expect(sockets.kind == kind)
        let v4Target = IPAddress(bytes: [198, 18, 0, 5])!
        let v6Target = IPAddress(bytes: [0xfd, 0, 0, 0x99] + Array(repeating: 0, count: 11) + [5])!
        let reporters: [IPFamily: IPAddress] = [
            .v4: IPAddress(bytes: [10, 200, 0, 2])!,
            .v6: IPAddress(bytes: [0xfd, 0, 2, 0] + Array(repeating: 0, count: 11) + [2])!,
        ]
        let probe = ProbePayload(runID: 13, targetIndex: 0, sequence: 300)
        var errors: [IPFamily: (incoming: Incoming, readNs: Int64)] = [:]
        // The first IPv6 probe may be spent on neighbour discovery; resend
        // each round until both errors arrived (bounded, not timed).
        for round in 0..<20 where errors.count < 2 {
            for target in [v4Target, v6Target] where errors[target.family] == nil {
                #expect(sockets.sendEcho(to: target, sequence: UInt16(300 + round),
                                         payload: probe.encode(size: Self.payloadSize)) == nil)
            }
            for incoming in sockets.receive(timeoutMilliseconds: 250) {
                if case .icmpError(let family, _, _, _, _, _, _, _, _) = incoming { errors[family] = (incoming, Self.realtimeNs()) }
            }
        }
        for family in [IPFamily.v4, .v6] {
            guard case .icmpError(_, let type, let code, let reporter, let destination, let identifier, let sequence,
                                  let quoted, let receivedNs) = errors[family]?.incoming, let readNs = errors[family]?.readNs else {
                Issue.record("no ICMP error for IPv\(family.rawValue) on \(kind) sockets")
                continue
            }
            // RFC 792: destination unreachable 3, host unreachable 1 (Linux
            // for an unreachable route); RFC 4443: 1, code 0 no route.
            #expect(type == (family == .v4 ? 3 : 1))
            #expect(code == (family == .v4 ? 1 : 0))
            #expect(reporter == reporters[family])
            #expect(destination == (family == .v4 ? v4Target : v6Target))
            #expect(identifier == sockets.identifier(for: family))
            #expect((300..<320).contains(sequence))
            // Linux routers quote the whole small probe (RFC 1812 / 4443).
            #expect(ProbePayload.decodeQuoted(quoted) == probe)
            try Self.expectRecent(receivedNs, readNs: readNs)
        }
    }

    // MARK: Many datagrams per receive (recvmmsg)

    /// 150 replies wait in the socket before one receive reads them, more
    /// than one recvmmsg call holds (64 with a 64-byte payload): every one
    /// is parsed, intact, and carries its own kernel receive stamp (a
    /// shared or shifted stamp would break the order or the bounds).
    @Test(needsNamespaces, arguments: [SocketKind.raw, .datagram])
    func queuedRepliesAreReadInBatchesEachWithItsOwnStamp(kind: SocketKind) throws {
        let suffix = kind == .datagram ? "md" : "mr"
        let namespace = try WireNamespace.create("pingem-wire-\(getpid())-\(suffix)")
        defer { namespace.delete() }
        try namespace.run("ip", "link", "set", "lo", "up")
        try namespace.run("sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647")
        let sockets = try namespace.openSockets(families: [.v4], kind: kind, largestPayload: Self.payloadSize)
        defer { sockets.close() }
        let target = IPAddress(bytes: [127, 0, 0, 1])!
        let count = 150
        var sentBefore: [UInt16: Int64] = [:]
        var payloads: [UInt16: [UInt8]] = [:]
        for index in 0..<count {
            let sequence = UInt16(1000 + index)
            let payload = ProbePayload(runID: 21, targetIndex: 0, sequence: UInt64(sequence)).encode(size: Self.payloadSize)
            sentBefore[sequence] = Self.realtimeNs()
            payloads[sequence] = payload
            #expect(sockets.sendEcho(to: target, sequence: sequence, payload: payload) == nil)
        }
        // Loopback answers inside sendto, or soon after in softirq: let
        // them all queue, so the first receive reads them in 64-datagram
        // batches (not a timing assertion: later reads would pass too).
        usleep(200_000)
        var replies: [UInt16: Int64] = [:]
        var reads = 0
        while replies.count < count && reads < 20 {
            reads += 1
            for incoming in sockets.receive(timeoutMilliseconds: 250) {
                guard case .echoReply(let from, let identifier, let sequence, let payload, let receivedNs) = incoming else { continue }
                #expect(from == target && identifier == sockets.identifier(for: .v4))
                #expect(payload == payloads[sequence], "sequence \(sequence)")
                #expect(replies[sequence] == nil, "sequence \(sequence) read twice")
                let stamp: Int64 = try #require(receivedNs, "no kernel receive timestamp")
                replies[sequence] = stamp
            }
        }
        #expect(replies.count == count)
        var previous: Int64 = 0
        for index in 0..<count {
            let sequence = UInt16(1000 + index)
            guard let stamp = replies[sequence], let before = sentBefore[sequence] else { continue }
            #expect(stamp >= before, "reply \(sequence) stamped before its request was sent")
            #expect(stamp > previous, "reply \(sequence) stamped no later than the one before it")
            previous = stamp
        }
    }

    // MARK: Helpers

    /// Sends one probe to each target and expects its echo reply, intact.
    static func expectEchoes(_ sockets: ICMPSockets, targets: [IPAddress], runID: UInt64) throws {
        var wanted: [IPAddress: (sequence: UInt16, payload: [UInt8])] = [:]
        for (index, target) in targets.enumerated() {
            let sequence = UInt16.random(in: 0...UInt16.max)
            let probe = ProbePayload(runID: runID, targetIndex: UInt32(index), sequence: UInt64(sequence) + 1 << 40)
            let payload = probe.encode(size: payloadSize)
            wanted[target] = (sequence, payload)
            #expect(sockets.sendEcho(to: target, sequence: sequence, payload: payload) == nil)
        }
        var replies: [IPAddress: (incoming: Incoming, readNs: Int64)] = [:]
        for _ in 0..<40 where replies.count < targets.count {
            for incoming in sockets.receive(timeoutMilliseconds: 250) {
                guard case .echoReply(let from, _, let sequence, _, _) = incoming, wanted[from]?.sequence == sequence else { continue }
                replies[from] = (incoming, realtimeNs())
            }
        }
        for target in targets {
            guard case .echoReply(let from, let identifier, let sequence, let payload, let receivedNs) = replies[target]?.incoming,
                  let readNs = replies[target]?.readNs, let sent = wanted[target] else {
                Issue.record("no echo reply from \(target.bytes) on \(sockets.kind) sockets")
                continue
            }
            #expect(from == target)
            #expect(identifier == sockets.identifier(for: target.family))
            #expect(sequence == sent.sequence)
            #expect(payload == sent.payload)
            #expect(ProbePayload.decode(payload, expectedSize: payloadSize) != nil)
            try expectRecent(receivedNs, readNs: readNs)
        }
    }

    /// SO_TIMESTAMPNS is CLOCK_REALTIME: within a second of when we read it.
    static func expectRecent(_ receivedNs: Int64?, readNs: Int64) throws {
        let received = try #require(receivedNs, "no kernel receive timestamp")
        #expect(abs(readNs - received) < 1_000_000_000)
    }

    static func realtimeNs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    static func pingGroupAllows(gid: gid_t) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ping_group_range", encoding: .utf8) else { return false }
        let bounds = text.split(whereSeparator: \.isWhitespace).compactMap { UInt64($0) }
        return bounds.count == 2 && bounds[0] <= UInt64(gid) && UInt64(gid) <= bounds[1]
    }
}

/// Making namespaces needs root: without it the runner reports these tests
/// skipped (under CI, failed).
let needsNamespaces = ConditionTrait.requiresRoot("creating network namespaces")

/// A network namespace made with `ip netns add` and removed by `delete`.
final class WireNamespace: Sendable {
    let name: String
    private init(name: String) { self.name = name }

    /// Skips the calling test (under CI: fails it) when `ip netns add` is
    /// refused; tests that call it carry `needsNamespaces` for root.
    static func create(_ name: String) throws -> WireNamespace {
        if FileManager.default.fileExists(atPath: "/var/run/netns/\(name)") {
            _ = try? runCommand(["ip", "netns", "del", name])   // left over from a killed run
        }
        do {
            try runCommand(["ip", "netns", "add", name])
        } catch {
            try skip("cannot create a network namespace (\(error))")
        }
        return WireNamespace(name: name)
    }

    func run(_ arguments: String...) throws {
        try Self.runCommand(["ip", "netns", "exec", name] + arguments)
    }

    func delete() {
        _ = try? Self.runCommand(["ip", "netns", "del", name])
    }

    /// Opens ICMPSockets from a thread that entered this namespace.
    func openSockets(families: Set<IPFamily>, kind: SocketKind?, largestPayload: Int? = nil) throws -> ICMPSockets {
        let result = Mutex<Result<ICMPSockets, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let path = "/var/run/netns/\(name)"
        let thread = Thread {
            result.withLock { $0 = Result { try Self.inNamespace(path) {
                try kind.map { try ICMPSockets.open(families: families, kind: $0, largestPayload: largestPayload) }
                    ?? ICMPSockets.open(families: families, largestPayload: largestPayload)
            } } }
            done.signal()
        }
        thread.start()
        done.wait()
        return try result.withLock { $0! }.get()
    }

    /// setns is not in Swift's Glibc module (it needs _GNU_SOURCE): look it
    /// up in libc. CLONE_NEWNET from linux/sched.h.
    private static func inNamespace<T>(_ path: String, _ body: () throws -> T) throws -> T {
        typealias SetNS = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "setns") else { throw SystemError(function: "dlsym(setns)", errno: ENOSYS) }
        let setns = unsafeBitCast(symbol, to: SetNS.self)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError(function: "open(\(path))", errno: errno) }
        defer { _ = close(fd) }
        guard setns(fd, 0x4000_0000) == 0 else { throw SystemError(function: "setns", errno: errno) }
        return try body()
    }

    struct CommandFailed: Error, CustomStringConvertible {
        var command: [String]
        var status: Int32
        var description: String { "\(command.joined(separator: " ")) exited with \(status)" }
    }

    @discardableResult
    static func runCommand(_ command: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CommandFailed(command: command, status: process.terminationStatus) }
        return 0
    }
}
