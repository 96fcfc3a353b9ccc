// A running `pingem serve` (the built binary) on a free loopback port, and
// readers of its output that wait for what they expect (never for a time).
import Foundation
import Store
import Synchronization
import Testing
import TestSupport

/// Text a child process writes, collected on a thread of its own.
final class Collected: Sendable {
    let text = Mutex("")
    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { return }
                text.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
        }
    }
    var value: String { text.withLock { $0 } }

    /// Waits until `condition` holds for the text (checked every 50 ms), up to
    /// `limit` seconds so a broken server fails the test instead of hanging it.
    @discardableResult
    func wait(limit: Double = 30, _ condition: (String) -> Bool) -> Bool {
        waitUntil(limit: limit, every: 0.05) { condition(value) }
    }
}

/// `pingem serve` on a free port, stopped (SIGTERM, then waited for) by stop().
final class RunningServe {
    let process = Process()
    let port: Int
    let stderr: Collected
    init(db: String, extra: [String] = []) throws {
        port = try freePort()
        process.executableURL = URL(fileURLWithPath: pingemBinary)
        process.arguments = ["serve", "--db", db, "--listen", "127.0.0.1:\(port)"] + extra
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        stderr = Collected(err.fileHandleForReading)
        let started = stderr.wait { $0.contains("pingem: serving") }
        try #require(started, "pingem serve did not start: \(stderr.value)")
    }
    var url: String { "http://127.0.0.1:\(port)" }
    func stop() {
        kill(process.processIdentifier, SIGTERM)
        let ended = waitUntil(limit: 10) { !process.isRunning }
        if !ended { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(ended, "pingem serve did not end on SIGTERM")
    }
}

/// One HTTP GET with curl: (status, body).
func get(_ url: String) throws -> (Int, String) {
    let text = try run("/usr/bin/curl", ["-s", "--max-time", "30", "-w", "\n%{http_code}", url]).stdout
    let cut = try #require(text.lastIndex(of: "\n"))
    return (Int(text[text.index(after: cut)...]) ?? 0, String(text[..<cut]))
}

/// An ISO 8601 UTC time for the page's since/until parameters.
func iso(_ ns: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: Date(timeIntervalSince1970: Double(ns / 1_000_000_000)))
}

/// Probes of one target "router" (1 s apart, all answered in 10 ms) for
/// seconds [from, to) after `start`, in a session of their own.
func writeSession(_ path: String, from: Int64, to: Int64, runID: UInt64) throws {
    let db = try Database(path: path, mode: .readWrite)
    let t = try db.target(name: "router", host: "198.18.0.1")
    let begin = start + from * second
    let session = try db.beginTestSession(runID: runID, intervalNs: second, startedNs: begin, targets: [t.id])
    var b = WriteBatch()
    b.addresses = [AddressRecord(targetID: t.id, sinceNs: begin, address: "198.18.0.1")]
    for k in from..<to { b.probes.append(ProbeRecord(sentNs: start + k * second, targetID: t.id, rttNs: 10 * ms)) }
    b.heartbeatNs = start + to * second
    try db.write(b, session: session)
    try db.endSession(session, stoppedNs: start + to * second)
}
