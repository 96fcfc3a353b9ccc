// Small builders for hand-made report inputs. Times are offsets from t0,
// 2026-11-25T21:00:00Z (a whole hour, so 5-minute epochs start at t0).
import Store
@testable import Reports

let second: Nanoseconds = 1_000_000_000
let millisecond: Nanoseconds = 1_000_000
let minute: Nanoseconds = 60 * second
let t0: Nanoseconds = 1_795_640_400 * second

func at(_ seconds: Double) -> Nanoseconds { t0 + Nanoseconds((seconds * 1e9).rounded()) }

func makeSession(
    id: Int64 = 1, start: Nanoseconds, stopped: Nanoseconds?, heartbeat: Nanoseconds? = nil,
    interval: Nanoseconds = second
) -> SessionRecord {
    SessionRecord(id: id, runID: UInt64(id), pid: 100, hostname: "test", version: "0", socketKind: "datagram",
                  intervalNs: interval, payloadBytes: 56, startedNs: start,
                  heartbeatNs: heartbeat ?? stopped ?? start, stoppedNs: stopped)
}

let router = TargetRecord(id: 1, name: "router", host: "r.lan")

/// One target probed by one session [t0, t0 + length], stopped cleanly.
func singleTargetInput(length: Nanoseconds = 100 * second, probes: [ProbeRecord], replies: [ReplyRecord] = [],
                       icmpErrors: [ICMPErrorRecord] = []) -> ReportInput {
    ReportInput(targets: [router], sessions: [makeSession(start: t0, stopped: t0 + length)],
                sessionTargets: [SessionTargetRecord(sessionID: 1, targetID: 1, offsetNs: 0)],
                probes: probes, replies: replies, icmpErrors: icmpErrors)
}

func probe(_ seconds: Double, rttMs: Double? = nil, sendError: Int32? = nil, target: Int64 = 1) -> ProbeRecord {
    ProbeRecord(sentNs: at(seconds), targetID: target,
                rttNs: rttMs.map { Nanoseconds(($0 * 1e6).rounded()) }, sendError: sendError)
}

func reply(_ seconds: Double, rttMs: Double, target: Int64 = 1) -> ReplyRecord {
    ReplyRecord(sentNs: at(seconds), targetID: target, rttNs: Nanoseconds((rttMs * 1e6).rounded()))
}

func options(from: Nanoseconds = t0, to: Nanoseconds = t0 + 100 * second, epoch: Nanoseconds? = nil,
             timeout: Nanoseconds = 2 * second, outageMin: Int = 3, targets: [String] = []) -> ReportOptions {
    ReportOptions(since: from, until: to, epochNs: epoch, timeoutNs: timeout, outageMin: outageMin, targets: targets)
}

func summary(_ input: ReportInput, _ options: ReportOptions) throws -> Summary {
    try makeReport(input, options).targets[0].summary
}

func isClose(_ a: Double?, _ b: Double?) -> Bool {
    guard let a, let b else { return a == nil && b == nil }
    return abs(a - b) < 1e-9
}
