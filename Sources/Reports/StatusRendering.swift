// `pingem status`: a few aligned lines a person reads at a glance.
import Glibc
import Store

/// - Parameters:
///   - recorderPID: the pid holding the recorder lock, nil when none runs.
public func renderStatus(_ s: StoreStatus, path: String, recorderPID: Int32?, now: Int64) -> String {
    var rows: [(String, String)] = []
    rows.append(("database", "\(path) (\(formatBytes(s.fileBytes)))"))
    if let session = s.latestSession {
        let how = "session \(session.id), \(session.socketKind) socket, every \(formatInterval(session.intervalNs))"
        if let pid = recorderPID {
            rows.append(("recorder", "running, pid \(pid == 0 ? session.pid : pid), since \(localTime(session.startedNs)) (\(ago(now - session.startedNs))), \(how)"))
            rows.append(("heartbeat", "\(localTime(session.heartbeatNs)) (\(ago(now - session.heartbeatNs)))"))
        } else if let stopped = session.stoppedNs {
            rows.append(("recorder", "not running; last \(how) ran \(localTime(session.startedNs)) to \(localTime(stopped)), stopped cleanly"))
        } else {
            rows.append(("recorder", "not running; last \(how) started \(localTime(session.startedNs)) and ended without a clean stop; last sign of life \(localTime(session.heartbeatNs))"))
        }
        rows.append(("targets", s.latestSessionTargets.joined(separator: ", ")))
    } else {
        rows.append(("recorder", recorderPID.map { "running, pid \($0), starting" } ?? "never ran on this database"))
    }
    if let last = s.lastProbeSentNs {
        rows.append(("last probe", "\(localTime(last)) (\(ago(now - last)))"))
    }
    rows.append(("probes", "\(group(s.probeCount)) sent, \(group(s.replyCount)) replies"))
    let width = rows.map(\.0.count).max() ?? 0
    return rows.map { $0.0 + String(repeating: " ", count: width - $0.0.count + 2) + $0.1 }.joined(separator: "\n") + "\n"
}

func formatBytes(_ n: Int64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) bytes" : String(format: "%.1f %@", v, units[u])
}

func formatInterval(_ ns: Int64) -> String {
    if ns % 1_000_000_000 == 0 { return "\(ns / 1_000_000_000)s" }
    if ns % 1_000_000 == 0 { return "\(ns / 1_000_000)ms" }
    return "\(ns / 1000)us"
}

func group(_ n: Int64) -> String {
    let digits = Array(String(n))
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(c)
    }
    return out
}

func ago(_ ns: Int64) -> String {
    let s = Double(ns) / 1e9
    if s < 0 { return "in the future: is the clock right?" }
    if s < 60 { return String(format: "%.1f s ago", s) }
    if s < 3600 { return "\(Int(s / 60)) min ago" }
    if s < 172_800 { return String(format: "%.1f h ago", s / 3600) }
    return "\(Int(s / 86400)) days ago"
}

/// "2026-11-25 22:30:01 +0100" in the local zone.
func localTime(_ ns: Int64) -> String {
    var t = time_t(ns / 1_000_000_000)
    var tm = tm()
    localtime_r(&t, &tm)
    var buffer = [CChar](repeating: 0, count: 64)
    let n = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S %z", &tm)
    return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
