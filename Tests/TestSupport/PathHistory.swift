// A history with path rounds for the views' tests (export, the live page,
// their hop strips and where labels), written through the real Store as
// `pingem record` writes it. One target, "far" (203.0.113.50), probed every
// second for 10 minutes; the 30 probes sent from 300 s are lost (an
// outage). A round every 10 s over 5 routers and the target (pathProbeRecords'
// notation): hop 2 rate-limits, answering only odd rounds, and the three
// rounds in the outage lose hop 3 onwards (the middle one hop 2 as well),
// so the loss begins at hop 3, 198.18.3.1, not at the rate-limiting hop 2.
public import Store

public struct PathHistory {
    public static let second: Nanoseconds = 1_000_000_000
    /// The rounds, one every 10 s from the start.
    public static let rounds: [String] = (0..<60).map { i in
        switch i {
        case 30, 32: "++---|-"
        case 31: "+----|-"
        default: i % 2 == 0 ? "+-+++|+" : "+++++|+"
        }
    }
    public static let outageStartNs: Nanoseconds = 300 * second
    public static let outageProbes = 30

    public let path: String
    /// The window the history fills, [since, until).
    public let since: Nanoseconds
    public let until: Nanoseconds

    /// Writes the history into a new database at `path`, from `start`.
    public init(at path: String, start: Nanoseconds) throws {
        self.path = path; since = start; until = start + 600 * Self.second
        let db = try Database(path: path, mode: .readWrite)
        let far = try db.target(name: "far", host: "203.0.113.50")
        let session = try db.beginTestSession(intervalNs: Self.second, startedNs: start, targets: [far.id])
        var batch = WriteBatch()
        batch.addresses = [AddressRecord(targetID: far.id, sinceNs: start, address: "203.0.113.50")]
        let lost = Self.outageStartNs..<(Self.outageStartNs + Nanoseconds(Self.outageProbes) * Self.second)
        for k in 0..<600 {
            let offset = Nanoseconds(k) * Self.second
            batch.probes.append(ProbeRecord(sentNs: start + offset, targetID: far.id, rttNs: lost.contains(offset) ? nil : 20_000_000))
        }
        batch.pathProbes = pathProbeRecords(Self.rounds, target: far.id, from: start, spacingNs: 10 * Self.second)
        batch.heartbeatNs = until + 10 * Self.second
        try db.write(batch, session: session)
        try db.endSession(session, stoppedNs: until + 10 * Self.second)
    }
}
