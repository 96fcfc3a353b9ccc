// Plain Swift values for what the database holds. Recorder writes them,
// Reports reads them; neither sees SQLite. Column meanings: schema.sql.

/// Nanoseconds: since the Unix epoch for instants, or a duration.
public typealias Nanoseconds = Int64

public struct TargetRecord: Sendable, Hashable {
    public var id: Int64
    /// The label if the user gave one, else the host as given.
    public var name: String
    /// The host name or address as given to the latest recorder.
    public var host: String
    public init(id: Int64, name: String, host: String) {
        self.id = id; self.name = name; self.host = host
    }
}

public struct SessionRecord: Sendable, Hashable {
    public var id: Int64
    public var runID: UInt64
    public var pid: Int32
    public var hostname: String
    public var version: String
    public var socketKind: String
    public var intervalNs: Nanoseconds
    public var payloadBytes: Int
    public var startedNs: Nanoseconds
    public var heartbeatNs: Nanoseconds
    public var stoppedNs: Nanoseconds?
    public var foreignPackets: Int64
    /// The recorder's last sign of life: its clean stop, else its last commit.
    public var endNs: Nanoseconds { stoppedNs ?? heartbeatNs }
    public init(
        id: Int64, runID: UInt64, pid: Int32, hostname: String, version: String,
        socketKind: String, intervalNs: Nanoseconds, payloadBytes: Int,
        startedNs: Nanoseconds, heartbeatNs: Nanoseconds, stoppedNs: Nanoseconds?,
        foreignPackets: Int64 = 0
    ) {
        self.id = id; self.runID = runID; self.pid = pid; self.hostname = hostname
        self.version = version; self.socketKind = socketKind; self.intervalNs = intervalNs
        self.payloadBytes = payloadBytes; self.startedNs = startedNs
        self.heartbeatNs = heartbeatNs; self.stoppedNs = stoppedNs
        self.foreignPackets = foreignPackets
    }
}

public struct SessionTargetRecord: Sendable, Hashable {
    public var sessionID: Int64
    public var targetID: Int64
    public var offsetNs: Nanoseconds
    /// The local address the probes were sent from (--source), nil: any.
    public var source: String?
    /// The interface they were bound to (--interface), nil: by the routes.
    public var interface: String?
    /// The TOS byte / traffic class they carried (--tos), nil: the kernel's 0.
    public var tos: Int?
    /// When the session probed the target (session_target_span), by start;
    /// empty: for the whole session.
    public var spans: [TargetSpan]
    public init(sessionID: Int64, targetID: Int64, offsetNs: Nanoseconds,
                source: String? = nil, interface: String? = nil, tos: Int? = nil, spans: [TargetSpan] = []) {
        self.sessionID = sessionID; self.targetID = targetID; self.offsetNs = offsetNs
        self.source = source; self.interface = interface; self.tos = tos; self.spans = spans
    }
}

/// A stretch of a session in which it probed a target: [startNs, endNs),
/// endNs nil while it still does (until the session's end).
public struct TargetSpan: Sendable, Hashable {
    public var startNs: Nanoseconds
    public var endNs: Nanoseconds?
    public init(startNs: Nanoseconds, endNs: Nanoseconds?) {
        self.startNs = startNs; self.endNs = endNs
    }
}

/// A change of a running session's target set (a reloaded targets file),
/// written with the batch it happened in.
public enum SessionTargetChange: Sendable, Hashable {
    /// Probed from `startNs` (its first slot) on, at the record's offset; a
    /// target removed earlier in the session keeps its first offset.
    case added(SessionTargetRecord, startNs: Nanoseconds)
    /// No longer probed from `endNs` on.
    case removed(targetID: Int64, endNs: Nanoseconds)
}

public struct AddressRecord: Sendable, Hashable {
    public var targetID: Int64
    public var sinceNs: Nanoseconds
    public var address: String
    public init(targetID: Int64, sinceNs: Nanoseconds, address: String) {
        self.targetID = targetID; self.sinceNs = sinceNs; self.address = address
    }
}

public struct GapRecord: Sendable, Hashable {
    public enum Reason: String, Sendable { case stalled, dropped }
    public var sessionID: Int64
    public var startNs: Nanoseconds
    public var endNs: Nanoseconds
    public var reason: Reason
    public init(sessionID: Int64, startNs: Nanoseconds, endNs: Nanoseconds, reason: Reason) {
        self.sessionID = sessionID; self.startNs = startNs; self.endNs = endNs; self.reason = reason
    }
}

/// Probe.sendError value for a probe that could not be sent because its
/// target's name did not resolve to an address.
public let sendErrorUnresolved: Int32 = -1

public struct ProbeRecord: Sendable, Hashable {
    public var sentNs: Nanoseconds
    public var targetID: Int64
    /// First echo reply known when the row was written; later ones are ReplyRecords.
    public var rttNs: Nanoseconds?
    /// nil: sent. > 0: errno of the failed send. -1: name did not resolve.
    public var sendError: Int32?
    public init(sentNs: Nanoseconds, targetID: Int64, rttNs: Nanoseconds? = nil, sendError: Int32? = nil) {
        self.sentNs = sentNs; self.targetID = targetID; self.rttNs = rttNs; self.sendError = sendError
    }
}

/// An echo reply not stored in its probe's row: a duplicate, or one that came
/// after the probe's row was written.
public struct ReplyRecord: Sendable, Hashable {
    public var sentNs: Nanoseconds
    public var targetID: Int64
    public var rttNs: Nanoseconds
    public init(sentNs: Nanoseconds, targetID: Int64, rttNs: Nanoseconds) {
        self.sentNs = sentNs; self.targetID = targetID; self.rttNs = rttNs
    }
}

public struct ICMPErrorRecord: Sendable, Hashable {
    public var sentNs: Nanoseconds
    public var targetID: Int64
    public var rttNs: Nanoseconds
    /// 4 for ICMP, 6 for ICMPv6: the type numbers differ.
    public var family: Int
    public var type: UInt8
    public var code: UInt8
    /// The router that reported it (numeric address).
    public var source: String
    public init(sentNs: Nanoseconds, targetID: Int64, rttNs: Nanoseconds, family: Int, type: UInt8, code: UInt8, source: String) {
        self.sentNs = sentNs; self.targetID = targetID; self.rttNs = rttNs
        self.family = family; self.type = type; self.code = code; self.source = source
    }
}

/// What a recorder commits in one transaction.
public struct WriteBatch: Sendable {
    /// Probes sent since the last batch, in send order; rttNs set when the
    /// first reply came before this batch was cut.
    public var probes: [ProbeRecord] = []
    /// Replies for probes written by an earlier batch, and duplicates.
    public var replies: [ReplyRecord] = []
    public var icmpErrors: [ICMPErrorRecord] = []
    public var addresses: [AddressRecord] = []
    public var gaps: [GapRecord] = []
    /// Path probes of the rounds that closed since the last batch (PathRecords.swift).
    public var pathProbes: [PathProbeRecord] = []
    /// Hops that answered from a new address.
    public var pathHops: [PathHopRecord] = []
    /// Targets added or removed since the last batch, in order.
    public var targetChanges: [SessionTargetChange] = []
    /// Foreign packets counted since the last batch (added to the session's count).
    public var foreignPackets: Int64 = 0
    /// Wall clock at commit: becomes session.heartbeat_ns.
    public var heartbeatNs: Nanoseconds = 0
    public init() {}
    public var isEmpty: Bool {
        probes.isEmpty && replies.isEmpty && icmpErrors.isEmpty && addresses.isEmpty
            && gaps.isEmpty && targetChanges.isEmpty && foreignPackets == 0 && pathProbes.isEmpty && pathHops.isEmpty
    }
}

/// A new session, before the database gives it an id.
public struct NewSession: Sendable {
    public var runID: UInt64
    public var pid: Int32
    public var hostname: String
    public var version: String
    public var socketKind: String
    public var intervalNs: Nanoseconds
    public var payloadBytes: Int
    public var startedNs: Nanoseconds
    public init(runID: UInt64, pid: Int32, hostname: String, version: String, socketKind: String,
                intervalNs: Nanoseconds, payloadBytes: Int, startedNs: Nanoseconds) {
        self.runID = runID; self.pid = pid; self.hostname = hostname; self.version = version
        self.socketKind = socketKind; self.intervalNs = intervalNs; self.payloadBytes = payloadBytes
        self.startedNs = startedNs
    }
}
