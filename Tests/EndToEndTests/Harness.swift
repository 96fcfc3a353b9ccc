import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport
@testable import pingem_responder

// Test harness: a network namespace per test with a TUN device the
// pingem-responder answers on, plus helpers to run the built binaries.
//
// Layout inside each namespace (see LINUX-ICMP.md, "Test hosts"):
//   lo up; tun0 with 198.18.0.1/24 and fd00:18::1/64 (nodad: a TUN has no
//   neighbours to detect, and a tentative address would refuse to send);
//   198.18.0.0/24 and fd00:18::/64 routed into tun0, where the responder
//   answers for the destinations in its config.

enum E2E {
    /// `swift test` builds `pingem` and `pingem-responder` next to the test
    /// bundle (EndToEndTests depends on both).
    static var pingem: String { builtBinary("pingem") }
    static var responder: String { builtBinary("pingem-responder") }

    /// Skips the calling test when namespaces are unavailable (not root, no
    /// /dev/net/tun, `ip netns add` refused); under CI fails it (TestSupport's
    /// rule).
    static func requireNetworkNamespaces() throws {
        var reason: String?
        if geteuid() != 0 {
            reason = "end-to-end tests need root to create network namespaces (euid \(geteuid()))"
        } else if access("/dev/net/tun", R_OK | W_OK) != 0 {
            reason = "end-to-end tests need /dev/net/tun"
        } else if access("/usr/sbin/ip", X_OK) != 0 && access("/sbin/ip", X_OK) != 0 && access("/usr/bin/ip", X_OK) != 0 {
            reason = "end-to-end tests need iproute2's `ip`"
        } else {
            let probe = "pingem-e2e-\(getpid())-probe"
            let added = runCommand(["ip", "netns", "add", probe])
            if added.status != 0 {
                reason = "cannot create a network namespace: \(added.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
            } else {
                _ = runCommand(["ip", "netns", "del", probe])
            }
        }
        if let reason { try skip(reason) }
    }
}

struct E2EError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs a command to completion, its output captured through temporary
/// files (a pipe could fill and stall a chatty child).
func runCommand(_ arguments: [String], timeout: Double = 60) -> CommandResult {
    let scratch = FileManager.default.temporaryDirectory
        .appendingPathComponent("pingem-e2e-cmd-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    do {
        let child = try ChildProcess(arguments, outputDirectory: scratch)
        let status = child.wait(timeout: timeout)
        return CommandResult(status: status, stdout: child.stdout, stderr: child.stderr)
    } catch {
        return CommandResult(status: -1, stdout: "", stderr: "\(error)")
    }
}

/// A started child process with stdout/stderr in files under a directory.
final class ChildProcess {
    let process = Process()
    let arguments: [String]
    private let stdoutURL: URL
    private let stderrURL: URL

    init(_ arguments: [String], outputDirectory: URL, name: String = UUID().uuidString) throws {
        self.arguments = arguments
        stdoutURL = outputDirectory.appendingPathComponent("\(name).stdout")
        stderrURL = outputDirectory.appendingPathComponent("\(name).stderr")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// `ip netns exec` and `setpriv` exec the command in place, so this pid
    /// is the command's own and the signal reaches it directly.
    func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// Waits for exit; past the timeout kills it and returns -9.
    @discardableResult
    func wait(timeout: Double) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return -9
        }
        return process.terminationStatus
    }
}

private let namespaceCounter = Atomic<Int>(0)

/// One network namespace with tun0 and a running responder; `destroy()`
/// kills what it started and deletes the namespace (call it in a defer).
final class TestNamespace {
    let name: String
    /// Scratch directory for config, logs, databases; removed on destroy.
    let directory: URL
    private var children: [ChildProcess] = []
    private var destroyed = false

    /// Skips the calling test (under CI: fails it) where namespaces cannot
    /// be made; `pingSockets` opens ICMP datagram sockets to every user in it.
    init(pingSockets: Bool = false) throws {
        try E2E.requireNetworkNamespaces()
        let number = namespaceCounter.wrappingAdd(1, ordering: .relaxed).oldValue
        name = "pingem-e2e-\(getpid())-\(number)"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(name)
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        _ = runCommand(["ip", "netns", "del", name])  // a leftover from a crashed run
        do {
            try ip(["netns", "add", name])
            try ip(["-n", name, "link", "set", "lo", "up"])
            try ip(["-n", name, "tuntap", "add", "dev", "tun0", "mode", "tun"])
            try ip(["-n", name, "addr", "add", "198.18.0.1/24", "dev", "tun0"])
            try ip(["-n", name, "addr", "add", "fd00:18::1/64", "dev", "tun0", "nodad"])
            try ip(["-n", name, "link", "set", "tun0", "up"])
            try ip(["-n", name, "route", "replace", "198.18.0.0/24", "dev", "tun0"])
            try ip(["-n", name, "-6", "route", "replace", "fd00:18::/64", "dev", "tun0"])
            if pingSockets { try allowPingSockets() }
        } catch {
            destroy()
            throw error
        }
    }

    deinit { destroy() }

    private func ip(_ arguments: [String]) throws {
        let result = runCommand(["ip"] + arguments)
        if result.status != 0 {
            throw E2EError("ip \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        }
    }

    /// Runs a command inside the namespace to completion.
    func run(_ arguments: [String], timeout: Double = 60) -> CommandResult {
        runCommand(["ip", "netns", "exec", name] + arguments, timeout: timeout)
    }

    /// Starts a command inside the namespace; it is killed on destroy if still running.
    func start(_ arguments: [String], label: String) throws -> ChildProcess {
        let child = try ChildProcess(["ip", "netns", "exec", name] + arguments, outputDirectory: directory, name: label)
        children.append(child)
        return child
    }

    /// Gives the namespace its own copy of a file in /etc (hosts,
    /// nsswitch.conf, resolv.conf): `ip netns exec` bind-mounts every file
    /// of /etc/netns/NAME over /etc in the commands it runs (ip-netns(8)),
    /// so a test picks what names resolve to without touching the host's.
    func writeEtc(_ file: String, _ contents: String) throws {
        let folder = URL(fileURLWithPath: "/etc/netns").appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: folder.appendingPathComponent(file))
    }

    /// Lets unprivileged users open ICMP datagram ("ping") sockets in this
    /// namespace only (the sysctl is per namespace; LINUX-ICMP.md).
    func allowPingSockets() throws {
        let result = run(["sysctl", "-w", "net.ipv4.ping_group_range=0 2147483647"])
        if result.status != 0 { throw E2EError("sysctl ping_group_range failed: \(result.stderr)") }
    }

    /// Writes the config, starts the responder on tun0 and waits until it
    /// has attached (it creates its log only then).
    func startResponder(_ destinations: [ResponderDestination]) throws -> Responder {
        let configURL = directory.appendingPathComponent("responder.json")
        let logURL = directory.appendingPathComponent("responder.log")
        let pathLogURL = directory.appendingPathComponent("responder-paths.log")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(["destinations": destinations]).write(to: configURL)
        let child = try start(
            [E2E.responder, "--tun", "tun0", "--config", configURL.path, "--log", logURL.path,
             "--path-log", pathLogURL.path],
            label: "responder")
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: logURL.path) {
            if !child.isRunning {
                throw E2EError("pingem-responder exited at start: \(child.stderr)")
            }
            if Date() > deadline { throw E2EError("pingem-responder did not attach to tun0 within 10 s") }
            usleep(20_000)
        }
        return Responder(child: child, logURL: logURL, pathLogURL: pathLogURL)
    }

    func destroy() {
        guard !destroyed else { return }
        destroyed = true
        for child in children where child.isRunning {
            child.signal(SIGKILL)
            child.wait(timeout: 5)
        }
        _ = runCommand(["ip", "netns", "del", name])
        try? FileManager.default.removeItem(at: directory)
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(name)")
    }
}

/// One destination in the responder's config: the responder's own type
/// (Tests/Responder/Config.swift), so the format is written once.
typealias ResponderDestination = DestinationConfig

struct Responder {
    let child: ChildProcess
    let logURL: URL
    /// What pingem's path probes met (Tests/Responder/Routers.swift).
    let pathLogURL: URL

    /// SIGTERM, then the log: the responder flushes it and exits 0.
    func stop() throws -> [ResponderLogLine] {
        child.signal(SIGTERM)
        let status = child.wait(timeout: 10)
        if status != 0 { throw E2EError("pingem-responder exited \(status): \(child.stderr)") }
        return try readLog()
    }

    func readLog() throws -> [ResponderLogLine] { try Self.lines(logURL) }

    /// The path log, after `stop()`.
    func readPathLog() throws -> [PathLogLine] { try Self.lines(pathLogURL) }

    private static func lines<Line: Decodable>(_ url: URL) throws -> [Line] {
        let text = try String(contentsOf: url, encoding: .utf8)
        let decoder = JSONDecoder()
        return try text.split(separator: "\n").map { try decoder.decode(Line.self, from: Data($0.utf8)) }
    }
}

/// One line of the responder's log: the responder's own type, so its schema
/// (Tests/Responder/Log.swift) is written once.
typealias ResponderLogLine = LogLine

extension LogLine {
    func sentTimes(_ kind: String) -> [Int64] { sent.filter { $0.kind == kind }.map(\.time_ns) }
}
