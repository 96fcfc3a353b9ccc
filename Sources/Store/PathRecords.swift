// What a path round stores: one TTL-limited echo request towards a target
// (the router at hop h answers "time exceeded", RFC 792 / RFC 4443) or the
// round's echo request to the target itself. The recorder writes them, the
// judge (Judge/) reads them; neither sees SQLite. Column meanings: schema.sql.

/// How a path probe was answered, from the ICMP type of the answer and the
/// family it came in (ICMPv4 11 and ICMPv6 3 are both "time exceeded").
public enum PathAnswer: String, Sendable, Hashable, CaseIterable {
    /// A router's time exceeded: the probe's TTL ran out at that hop.
    case timeExceeded = "time-exceeded"
    /// The target's echo reply.
    case echoReply = "echo-reply"
    /// Destination unreachable, from a router or the target.
    case unreachable
    /// Any other ICMP error quoting the probe.
    case otherError = "other-error"
}

public struct PathProbeRecord: Sendable, Hashable {
    public var targetID: Int64
    /// The send time of the round's first probe: with the target, it names
    /// the round (all of whose probes leave within a few milliseconds).
    public var roundNs: Nanoseconds
    /// The TTL (hop limit) it was sent with, 1...30. The round's probe to the
    /// target carries the round's distance.
    public var ttl: Int
    /// True for the round's probe to the target itself, its last.
    public var toTarget: Bool
    public var sentNs: Nanoseconds
    /// The errno of a send that failed (the probe never left), else nil.
    public var sendError: Int32?
    /// When the answer arrived (the kernel's stamp), nil: no answer.
    public var receivedNs: Nanoseconds?
    /// Who answered, as text (with its zone if link-local), nil: no answer.
    public var from: String?
    public var answer: PathAnswer?
    /// The answer's ICMP type and code as received, for the record.
    public var icmpType: Int?
    public var icmpCode: Int?

    public init(targetID: Int64, roundNs: Nanoseconds, ttl: Int, toTarget: Bool, sentNs: Nanoseconds,
                sendError: Int32? = nil, receivedNs: Nanoseconds? = nil, from: String? = nil,
                answer: PathAnswer? = nil, icmpType: Int? = nil, icmpCode: Int? = nil) {
        self.targetID = targetID; self.roundNs = roundNs; self.ttl = ttl; self.toTarget = toTarget
        self.sentNs = sentNs; self.sendError = sendError; self.receivedNs = receivedNs; self.from = from
        self.answer = answer; self.icmpType = icmpType; self.icmpCode = icmpCode
    }

    /// The answer's round-trip time, nil without an answer.
    public var rttNs: Nanoseconds? { receivedNs.map { $0 - sentNs } }
}

/// The address a hop of a target's path answered from, from `sinceNs` on
/// (until the next record of the same target and TTL): a route's history.
public struct PathHopRecord: Sendable, Hashable {
    public var targetID: Int64
    public var ttl: Int
    /// The round in which the hop first answered from this address.
    public var sinceNs: Nanoseconds
    public var address: String
    public init(targetID: Int64, ttl: Int, sinceNs: Nanoseconds, address: String) {
        self.targetID = targetID; self.ttl = ttl; self.sinceNs = sinceNs; self.address = address
    }
}

extension PathAnswer {
    /// The answer an ICMP type stands for, in the family of the address
    /// that sent it (RFC 792: 0, 11, 3; RFC 4443: 129, 3, 1).
    public init(icmpType type: Int, isIPv6: Bool) {
        switch (isIPv6, type) {
        case (false, 0), (true, 129): self = .echoReply
        case (false, 11), (true, 3): self = .timeExceeded
        case (false, 3), (true, 1): self = .unreachable
        default: self = .otherError
        }
    }
}
