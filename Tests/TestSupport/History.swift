// Histories written through the real Store, as `pingem record` writes them,
// for tests of everything that reads one.
public import Store

extension Database {
    /// Begins a session as a recorder on a raw socket with 56-byte payloads
    /// does; target k of `targets` is probed `k * offsetStepNs` into every
    /// interval (the recorder's spreading of targets).
    public func beginTestSession(runID: UInt64 = 1, intervalNs: Int64, startedNs: Int64,
                                 targets: [Int64], offsetStepNs: Int64 = 0) throws -> Int64 {
        try beginSession(
            NewSession(runID: runID, pid: 1, hostname: "test", version: "test", socketKind: "raw",
                       intervalNs: intervalNs, payloadBytes: 56, startedNs: startedNs),
            targets: targets.enumerated().map {
                SessionTargetRecord(sessionID: 0, targetID: $1, offsetNs: Int64($0) * offsetStepNs)
            })
    }
}
