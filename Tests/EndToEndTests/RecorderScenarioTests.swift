import Foundation
import Glibc
import Testing
@testable import pingem_responder

// pingem record against the responder, then pingem report compared with the
// responder's log. Bounds, not equalities, only where the recorder's stop
// makes a probe's fate legitimately open: a probe sent less than the
// timeout before the stop may be "unknown", and a packet the responder sent
// between SIGINT and the recorder's exit may or may not have been seen.

struct Report: Decodable {
    struct Target: Decodable {
        struct Summary: Decodable {
            struct RTT: Decodable { var min: Double?; var p50: Double? }
            var sent: Int, received: Int, lost: Int, late: Int, duplicates: Int, errors: Int, unknown: Int
            var error_kinds: [String: Int]
            var loss_pct: Double?
            var rtt_ms: RTT
        }
        struct Outage: Decodable { var start: String; var end: String; var lost: Int; var seconds: Double }
        var target: String
        var summary: Summary
        var outages: [Outage]
    }
    var targets: [Target]
}

/// A fresh formatter each time: ISO8601DateFormatter is not Sendable.
var isoFormatter: ISO8601DateFormatter {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter
}

func iso(_ nanoseconds: Int64) -> String {
    isoFormatter.string(from: Date(timeIntervalSince1970: Double(nanoseconds) / 1e9))
}

/// The pingem binary; PINGEM_E2E_PINGEM overrides it (e.g. a build of main).
var pingemBinary: String { ProcessInfo.processInfo.environment["PINGEM_E2E_PINGEM"] ?? E2E.pingem }

@Suite(.serialized) struct RecorderScenarioTests {
    static var behaviours: [(label: String, last: Int, config: (String) -> ResponderDestination)] { [
        ("clean", 10, { .init(address: $0, behaviour: .clean) }),
        ("slow", 11, { .init(address: $0, behaviour: .slow, delay_ms: 250) }),
        ("lossy", 12, { .init(address: $0, behaviour: .lossy, seed: 7, loss_percent: 30) }),
        ("outage", 13, { .init(address: $0, behaviour: .outage, outage_start_s: 3, outage_end_s: 6) }),
        ("late", 14, { .init(address: $0, behaviour: .late, delay_ms: 3000, every: 4) }),
        ("dup", 15, { .init(address: $0, behaviour: .duplicate, delay_ms: 5, every: 3) }),
        ("unreach", 16, { .init(address: $0, behaviour: .unreachable) }),
        ("garbage", 17, { .init(address: $0, behaviour: .garbageFirst, delay_ms: 20) }),
        ("silent", 18, { .init(address: $0, behaviour: .silent) }),
    ] }

    @Test func everyBehaviourMatchesTheResponderLog() throws {
        let namespace = try TestNamespace()
        defer { namespace.destroy() }
        var destinations: [ResponderDestination] = []
        var targets: [String: String] = [:]  // label -> address
        for behaviour in Self.behaviours {
            for (family, address) in [("4", "198.18.0.\(behaviour.last)"), ("6", "fd00:18::\(behaviour.last)")] {
                destinations.append(behaviour.config(address))
                targets[behaviour.label + family] = address
            }
        }
        let responder = try namespace.startResponder(destinations)
        let db = namespace.directory.appendingPathComponent("e2e.db").path
        let since = realtimeNanoseconds() - 1_000_000_000
        let recorder = try namespace.start(
            [pingemBinary, "record"] + targets.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                + ["--db", db, "--interval", "100ms", "--flush", "1s"],
            label: "record")
        usleep(3_000_000)
        let status = runCommand([pingemBinary, "status", "--db", db])
        #expect(status.status == 0, "pingem status: \(status.stderr)")
        #expect(status.stdout.contains("clean4"), "status names the targets: \(status.stdout)")
        usleep(6_000_000)
        let stopSignal = realtimeNanoseconds()
        recorder.signal(SIGINT)
        let exit = recorder.wait(timeout: 30)
        let recorderExit = realtimeNanoseconds()
        try #require(exit == 0, "pingem record exited \(exit): \(recorder.stderr)")
        let log = try responder.stop()
        let reportRun = runCommand([pingemBinary, "report", "--db", db, "--since", iso(since),
            "--until", iso(recorderExit + 1_000_000_000), "--epoch", "1s", "--timeout", "1s",
            "--outage-min", "3", "--format", "json"])
        try #require(reportRun.status == 0, "pingem report: \(reportRun.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(reportRun.stdout.utf8))

        let timeout: Int64 = 1_000_000_000
        // Probes sent this close to SIGINT may end "unknown".
        func open(_ line: ResponderLogLine) -> Bool { line.time_ns + timeout + 200_000_000 >= stopSignal }
        #expect(Set(log.compactMap(\.run_id)).count == 1, "one recorder run")
        for (label, address) in targets {
            let lines = log.filter { $0.destination == address }.sorted { $0.time_ns < $1.time_ns }
            guard let target = report.targets.first(where: { $0.target == label }) else {
                Issue.record("report lacks target \(label)"); continue
            }
            let s = target.summary
            let requests = lines.count
            let openCount = lines.filter(open).count
            // Probe for probe: every probe stored was seen once on the wire,
            // with consecutive 64-bit sequences and one target index.
            #expect(s.sent == requests, "\(label): sent \(s.sent), responder saw \(requests)")
            #expect(s.sent == s.received + s.lost + s.unknown, "\(label): sent = received + lost + unknown")
            #expect(s.unknown <= openCount, "\(label): unknown \(s.unknown) > \(openCount) open at stop")
            let sequences = lines.compactMap(\.seq64)
            if let first = sequences.first {
                #expect(sequences == Array(first..<(first + UInt64(sequences.count))), "\(label): sequences")
            }
            #expect(Set(lines.compactMap(\.target_index)).count == 1, "\(label): one target index")
            let v4 = label.hasSuffix("4")
            switch label.dropLast() {
            case "clean", "garbage":
                #expect(s.lost == 0 && s.errors == 0 && s.late == 0 && s.duplicates == 0, "\(label): \(s)")
                #expect(s.received + s.unknown == requests)
                if label.hasPrefix("garbage") {
                    #expect((s.rtt_ms.min ?? 0) >= 20, "\(label): garbage taken as a reply, min \(s.rtt_ms.min ?? -1)")
                }
            case "slow":
                #expect(s.lost == 0 && s.received + s.unknown == requests)
                let p50 = s.rtt_ms.p50 ?? -1
                #expect(p50 >= 250 && p50 <= 280, "\(label): p50 \(p50)")
            case "lossy":
                let dropped = lines.filter { $0.action == "drop" }
                let replied = requests - dropped.count
                #expect(!dropped.isEmpty)
                #expect(s.lost <= dropped.count && s.lost >= dropped.filter { !open($0) }.count, "\(label): lost \(s.lost) vs dropped \(dropped.count)")
                #expect(s.received <= replied && s.received >= replied - lines.filter { open($0) && $0.action == "reply" }.count)
            case "outage":
                let dropped = lines.filter { $0.action == "drop" }
                #expect(s.lost == dropped.count, "\(label): lost \(s.lost) vs dropped \(dropped.count)")
                try #require(target.outages.count == 1, "\(label): outages \(target.outages.count)")
                let outage = target.outages[0]
                #expect(outage.lost == dropped.count)
                #expect(outage.seconds >= 2.8 && outage.seconds <= 3.2, "\(label): outage \(outage.seconds) s")
                if let start = isoFormatter.date(from: outage.start), let first = dropped.first {
                    #expect(abs(start.timeIntervalSince1970 - Double(first.time_ns) / 1e9) < 0.2)
                }
            case "late":
                let delayed = lines.filter { $0.action == "delay" }
                let sure = delayed.filter { ($0.sentTimes("reply").first ?? .max) < stopSignal }.count
                let possible = delayed.filter { ($0.sentTimes("reply").first ?? .max) <= recorderExit }.count
                #expect(sure > 0)
                #expect(s.late >= sure && s.late <= possible, "\(label): late \(s.late), log \(sure)...\(possible)")
                #expect(s.late <= s.lost)
            case "dup":
                let twice = lines.filter { $0.action == "duplicate" }
                let sure = twice.filter { ($0.sentTimes("duplicate").first ?? .max) < stopSignal }.count
                let possible = twice.filter { ($0.sentTimes("duplicate").first ?? .max) <= recorderExit }.count
                #expect(s.duplicates >= sure && s.duplicates <= possible, "\(label): duplicates \(s.duplicates), log \(sure)...\(possible)")
                #expect(s.lost == 0)
            case "unreach":
                let kind = v4 ? "host-unreachable" : "address-unreachable"
                #expect(s.received == 0 && s.errors == s.lost && s.errors + s.unknown == requests, "\(label): \(s)")
                #expect(s.error_kinds[kind] == s.errors, "\(label): \(s.error_kinds)")
                #expect(s.loss_pct == 100)
            case "silent":
                #expect(s.received == 0 && s.errors == 0)
                #expect(s.lost >= lines.filter { !open($0) }.count)
            default:
                Issue.record("unexpected label \(label)")
            }
        }
    }

    @Test func unprivilegedRecorderUsesDatagramSockets() throws {
        let namespace = try TestNamespace(pingSockets: true)
        defer { namespace.destroy() }
        let responder = try namespace.startResponder([
            .init(address: "198.18.0.10", behaviour: .clean), .init(address: "fd00:18::10", behaviour: .clean),
        ])
        let (binary, work) = try nobodysPingem(in: namespace)
        let db = work.appendingPathComponent("nobody.db").path
        let recorder = try namespace.start(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            binary, "record", "v4=198.18.0.10", "v6=fd00:18::10", "--db", db, "--interval", "100ms"], label: "nobody")
        usleep(3_000_000)
        recorder.signal(SIGINT)
        let exit = recorder.wait(timeout: 30)
        try #require(exit == 0, "unprivileged pingem record exited \(exit): \(recorder.stderr)")
        let log = try responder.stop()
        let reportRun = runCommand([pingemBinary, "report", "--db", db, "--since", iso(realtimeNanoseconds() - 60_000_000_000),
            "--until", iso(realtimeNanoseconds()), "--timeout", "1s", "--outage-min", "3", "--format", "json"])
        try #require(reportRun.status == 0, "pingem report: \(reportRun.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(reportRun.stdout.utf8))
        for (label, address) in [("v4", "198.18.0.10"), ("v6", "fd00:18::10")] {
            let target = try #require(report.targets.first { $0.target == label })
            let requests = log.filter { $0.destination == address }.count
            #expect(requests > 0)
            #expect(target.summary.sent == requests)
            #expect(target.summary.lost == 0 && target.summary.received + target.summary.unknown == requests)
            #expect(target.summary.received > 0)
        }
    }
}

/// The pingem binary and a folder that user nobody (65534) can reach and
/// write, for a recorder run unprivileged on datagram sockets.
func nobodysPingem(in namespace: TestNamespace) throws -> (binary: String, work: URL) {
    let work = namespace.directory.appendingPathComponent("nobody")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    chmod(namespace.directory.path, 0o755)
    chmod(work.path, 0o777)
    var binary = pingemBinary
    if !traversableByOthers(binary) {
        // The build dir is not reachable (e.g. under /root): use a copy.
        let copy = work.appendingPathComponent("pingem").path
        try FileManager.default.copyItem(atPath: binary, toPath: copy)
        chmod(copy, 0o755)
        binary = copy
    }
    try #require(traversableByOthers(binary), "skip: \(binary) is not reachable by nobody even in a 0755 copy")
    return (binary, work)
}

/// Whether every directory on the way to `path` lets others search it and
/// the file lets others execute it.
func traversableByOthers(_ path: String) -> Bool {
    var current = (path as NSString).deletingLastPathComponent
    while !current.isEmpty && current != "/" {
        var info = stat()
        guard stat(current, &info) == 0, info.st_mode & 0o001 != 0 else { return false }
        current = (current as NSString).deletingLastPathComponent
    }
    var info = stat()
    return stat(path, &info) == 0 && info.st_mode & 0o001 != 0
}
