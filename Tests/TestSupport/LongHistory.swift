// A history longer than 7 days with hourly summaries and a raw tail, for the
// tests of serve's zoom into a long window (/level, /probes and the page).
public import Store

/// Targets "a" and "b": probed once a minute for 8 days from `since`, then
/// every second for 3 hours from `dense` (an hour bound), every 50th probe of
/// "a" lost, RTTs 10 ms + (n mod 17) * 0.3 ms (n the send time in whole
/// intervals; "b" 1 ms more); hours summarized as the upkeep does up to the
/// last one, which stays raw (the raw tail).
public struct LongHistory: Sendable {
    public let path: String
    public let since: Int64
    public let dense: Int64
    public var until: Int64 { dense + 3 * hour }
    private let second: Int64 = 1_000_000_000
    private var hour: Int64 { 3600 * second }

    public init(at path: String, start: Int64) throws {
        self.path = path
        since = start
        let hour: Int64 = 3600 * 1_000_000_000
        dense = (start + 8 * 24 * hour + hour - 1) / hour * hour
        let db = try Database(path: path, mode: .readWrite)
        let targets = [try db.target(name: "a", host: "198.18.0.1").id, try db.target(name: "b", host: "198.18.0.2").id]
        try write(db, targets, runID: 1, from: start, to: dense, interval: 60 * second)
        try write(db, targets, runID: 2, from: dense, to: until, interval: second)
        while try db.summarizeHours(endingBy: until - hour, maxHours: 500) > 0 {}
    }

    /// The round-trip time of target "a"'s probe sent at `sentNs` in ms, nil when lost.
    public func rttMs(a sentNs: Int64) -> Double? {
        let k = sentNs / (sentNs < dense ? 60 * second : second)
        return k % 50 == 0 ? nil : 10 + Double(k % 17) * 0.3
    }

    private func write(_ db: Database, _ targets: [Int64], runID: UInt64, from: Int64, to: Int64, interval: Int64) throws {
        let session = try db.beginTestSession(runID: runID, intervalNs: interval, startedNs: from, targets: targets)
        var b = WriteBatch()
        b.addresses = targets.enumerated().map { AddressRecord(targetID: $1, sinceNs: from, address: "198.18.0.\($0 + 1)") }
        for sent in stride(from: from, to: to, by: Int(interval)) {
            let k = sent / interval
            // RTTs a tenth of a millisecond apart: the page shows them exactly.
            let rtt = 10_000_000 + (k % 17) * 300_000
            b.probes.append(ProbeRecord(sentNs: sent, targetID: targets[0], rttNs: k % 50 == 0 ? nil : rtt))
            b.probes.append(ProbeRecord(sentNs: sent, targetID: targets[1], rttNs: rtt + 1_000_000))
        }
        b.heartbeatNs = to
        try db.write(b, session: session)
        try db.endSession(session, stoppedNs: to)
    }
}
