// API outline (implementation in progress): see Records.swift for the values.
public final class Database {
    public enum Mode: Sendable { case readOnly, readWrite }
    public let path: String
    public init(path: String, mode: Mode) throws { self.path = path; fatalError("unimplemented") }

    // Recorder side (one writer).
    /// Finds the target by name, inserting it or updating its host.
    public func target(name: String, host: String) throws -> TargetRecord { fatalError() }
    public func beginSession(_ session: NewSession, targets: [SessionTargetRecord]) throws -> Int64 { fatalError() }
    public func write(_ batch: WriteBatch, session: Int64) throws { fatalError() }
    public func endSession(_ session: Int64, stoppedNs: Nanoseconds) throws { fatalError() }

    // Reader side. Ranges are half-open [from, to).
    public func targets() throws -> [TargetRecord] { fatalError() }
    public func sessions(overlapping from: Nanoseconds, _ to: Nanoseconds) throws -> [SessionRecord] { fatalError() }
    public func sessionTargets(sessions: [Int64]) throws -> [SessionTargetRecord] { fatalError() }
    public func gaps(overlapping from: Nanoseconds, _ to: Nanoseconds) throws -> [GapRecord] { fatalError() }
    public func addresses(target: Int64) throws -> [AddressRecord] { fatalError() }
    /// Probes with from <= sent_ns < to, in (sent_ns, target_id) order; targets nil = all.
    public func forEachProbe(from: Nanoseconds, to: Nanoseconds, targets: Set<Int64>?, _ body: (ProbeRecord) throws -> Void) throws { fatalError() }
    public func replies(from: Nanoseconds, to: Nanoseconds, targets: Set<Int64>?) throws -> [ReplyRecord] { fatalError() }
    public func icmpErrors(from: Nanoseconds, to: Nanoseconds, targets: Set<Int64>?) throws -> [ICMPErrorRecord] { fatalError() }
}
