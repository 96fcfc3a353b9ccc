// The boundary between the probe engine and the kernel. The engine speaks
// only this protocol, so tests can "play the kernel" with a fake transport
// (swift-nio's SyscallAbstractionLayer idea); the real one is ICMPSockets.

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address, network byte order.
public struct IPAddress: Hashable, Sendable {
    public var bytes: [UInt8]
    /// The interface index a link-local IPv6 address is reached through (its
    /// zone, RFC 4007; `sin6_scope_id`), 0 for every other address. Part of
    /// the identity: fe80::1 on eth0 and fe80::1 on wlan0 are two hosts, and
    /// without it the kernel cannot send to either (ENETUNREACH or EINVAL).
    public var scopeID: UInt32
    /// `scopeID` is kept only for a link-local address: the kernel fills
    /// sin6_scope_id in for those alone, so a zone on any other address
    /// would only make equal addresses unequal.
    public init?(bytes: [UInt8]) { self.init(bytes: bytes, scopeID: 0) }
    public init?(bytes: [UInt8], scopeID: UInt32) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
        self.scopeID = bytes.count == 16 && bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 ? scopeID : 0
    }
    public var family: IPFamily { bytes.count == 4 ? .v4 : .v6 }
}

public enum IPFamily: Int, Sendable, Hashable {
    case v4 = 4
    case v6 = 6
}

public enum SocketKind: String, Sendable {
    /// Unprivileged ICMP datagram ("ping") socket: the kernel owns the
    /// identifier and checksum and delivers only replies with our identifier.
    case datagram
    /// Raw socket (CAP_NET_RAW): sees every ICMP packet; filtered in the
    /// kernel by ICMP_FILTER / ICMP6_FILTER and by us.
    case raw
}

/// One thing the kernel handed us, parsed as far as the wire allows but not
/// yet matched against our probes (that is the engine's job).
public enum Incoming: Sendable, Equatable {
    /// An echo reply. `payload` is everything after the 8-byte ICMP header,
    /// exactly as received (possibly truncated, zeroed or forged).
    case echoReply(from: IPAddress, identifier: UInt16, sequence: UInt16, payload: [UInt8], kernelReceivedNs: Int64?)
    /// An ICMP error (destination unreachable, time exceeded, ...) quoting an
    /// echo request. `destination` is the quoted packet's destination (the
    /// probe's target), `identifier`/`sequence` from the quoted echo header,
    /// `quotedPayload` whatever of the probe's payload was quoted (often
    /// nothing for IPv4: RFC 792 only requires 8 bytes of the original).
    case icmpError(family: IPFamily, type: UInt8, code: UInt8, reporter: IPAddress, destination: IPAddress,
                   identifier: UInt16, sequence: UInt16, quotedPayload: [UInt8], kernelReceivedNs: Int64?)
    /// A packet that can never match a probe of ours (other identifier,
    /// other ICMP type, malformed, quoting something that is not our echo).
    case foreign
}

/// Sends echo requests and receives what comes back. Implementations are
/// used from two threads at once: one sends, one receives.
public protocol ICMPTransport: AnyObject, Sendable {
    var kind: SocketKind { get }
    /// Families this transport can send to.
    var families: Set<IPFamily> { get }
    /// The ICMP echo identifier our requests carry (and replies must carry)
    /// for a family on a path (an index into the ProbePaths the transport
    /// was opened with; 0 for one with a single path). For datagram
    /// sockets the kernel chose it. Each path's differs from every other's,
    /// so a reply is attributed by it to the path it was sent on.
    func identifier(for family: IPFamily, path: Int) -> UInt16
    /// Sends one echo request on a path. Returns nil on success, else the
    /// errno of the failed send (ENETUNREACH, EHOSTUNREACH, ...): the probe
    /// still counts. `hopLimit`: the IPv4 TTL / IPv6 hop limit of this one
    /// request (a path probe, PathRounds.swift); nil: the socket's default.
    func sendEcho(to destination: IPAddress, path: Int, sequence: UInt16, payload: [UInt8], hopLimit: Int?) -> Int32?
    /// Waits at most `timeoutMilliseconds` for packets and returns all that
    /// are ready (empty on timeout). Never blocks longer than the timeout.
    func receive(timeoutMilliseconds: Int32) -> [Incoming]
    func close()
}

extension ICMPTransport {
    /// The single path's identifier (path 0), for a transport opened
    /// without paths.
    public func identifier(for family: IPFamily) -> UInt16 { identifier(for: family, path: 0) }

    /// Sends on the single path (path 0).
    public func sendEcho(to destination: IPAddress, sequence: UInt16, payload: [UInt8]) -> Int32? {
        sendEcho(to: destination, path: 0, sequence: sequence, payload: payload, hopLimit: nil)
    }

    /// Sends with the socket's own TTL / hop limit.
    public func sendEcho(to destination: IPAddress, path: Int, sequence: UInt16, payload: [UInt8]) -> Int32? {
        sendEcho(to: destination, path: path, sequence: sequence, payload: payload, hopLimit: nil)
    }
}
