// ICMP wire constants and echo request encoding.
//
// Types and codes are structs, not enums: packets carry values we never
// listed, and parsing must represent them without failing (swift-nio
// IPProtocol). ICMPv4 values are from RFC 792 (plus RFC 1191/1812 codes),
// ICMPv6 values from RFC 4443. The two numbering spaces overlap (3 is
// "destination unreachable" in v4 but "time exceeded" in v6), so each
// constant says its family in its name.

/// An ICMP or ICMPv6 message type (the first byte of the ICMP header).
public struct ICMPType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    // MARK: ICMPv4, RFC 792

    /// Echo reply (RFC 792).
    public static let echoReply = ICMPType(rawValue: 0)
    /// Destination unreachable (RFC 792).
    public static let destinationUnreachable = ICMPType(rawValue: 3)
    /// Source quench (RFC 792; deprecated by RFC 6633 but still seen).
    public static let sourceQuench = ICMPType(rawValue: 4)
    /// Redirect (RFC 792). Not about our probe: never an error we report.
    public static let redirect = ICMPType(rawValue: 5)
    /// Echo request (RFC 792).
    public static let echoRequest = ICMPType(rawValue: 8)
    /// Time exceeded (RFC 792).
    public static let timeExceeded = ICMPType(rawValue: 11)
    /// Parameter problem (RFC 792).
    public static let parameterProblem = ICMPType(rawValue: 12)

    // MARK: ICMPv6, RFC 4443

    /// Destination unreachable (RFC 4443 section 3.1).
    public static let v6DestinationUnreachable = ICMPType(rawValue: 1)
    /// Packet too big (RFC 4443 section 3.2).
    public static let v6PacketTooBig = ICMPType(rawValue: 2)
    /// Time exceeded (RFC 4443 section 3.3).
    public static let v6TimeExceeded = ICMPType(rawValue: 3)
    /// Parameter problem (RFC 4443 section 3.4).
    public static let v6ParameterProblem = ICMPType(rawValue: 4)
    /// Echo request (RFC 4443 section 4.1).
    public static let v6EchoRequest = ICMPType(rawValue: 128)
    /// Echo reply (RFC 4443 section 4.2).
    public static let v6EchoReply = ICMPType(rawValue: 129)

    public static func echoRequest(for family: IPFamily) -> ICMPType {
        family == .v4 ? .echoRequest : .v6EchoRequest
    }
    public static func echoReply(for family: IPFamily) -> ICMPType {
        family == .v4 ? .echoReply : .v6EchoReply
    }

    /// The error types that quote the offending packet and so can be matched
    /// to a probe: RFC 792 (v4) and RFC 4443 section 2.1 (v6, types < 128).
    public static func isQuotingError(_ type: ICMPType, family: IPFamily) -> Bool {
        switch (family, type) {
        case (.v4, .destinationUnreachable), (.v4, .sourceQuench), (.v4, .timeExceeded), (.v4, .parameterProblem),
             (.v6, .v6DestinationUnreachable), (.v6, .v6PacketTooBig), (.v6, .v6TimeExceeded), (.v6, .v6ParameterProblem):
            return true
        default:
            return false
        }
    }

    public var description: String { "ICMPType(\(rawValue))" }
}

/// An ICMP code (the second byte); its meaning depends on the type.
public struct ICMPCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Echo request/reply always carry code 0 (RFC 792, RFC 4443 section 4).
    public static let zero = ICMPCode(rawValue: 0)

    // MARK: ICMPv4 destination unreachable (RFC 792, RFC 1191, RFC 1812)
    public static let netUnreachable = ICMPCode(rawValue: 0)
    public static let hostUnreachable = ICMPCode(rawValue: 1)
    public static let protocolUnreachable = ICMPCode(rawValue: 2)
    public static let portUnreachable = ICMPCode(rawValue: 3)
    /// Fragmentation needed and DF set (RFC 792; MTU in the header per RFC 1191).
    public static let fragmentationNeeded = ICMPCode(rawValue: 4)
    public static let sourceRouteFailed = ICMPCode(rawValue: 5)
    /// Communication administratively prohibited (RFC 1812 section 5.2.7.1).
    public static let administrativelyProhibited = ICMPCode(rawValue: 13)

    // MARK: ICMPv4 time exceeded (RFC 792)
    public static let ttlExceededInTransit = ICMPCode(rawValue: 0)
    public static let fragmentReassemblyTimeExceeded = ICMPCode(rawValue: 1)

    // MARK: ICMPv6 destination unreachable (RFC 4443 section 3.1)
    public static let v6NoRoute = ICMPCode(rawValue: 0)
    public static let v6AdministrativelyProhibited = ICMPCode(rawValue: 1)
    public static let v6BeyondScope = ICMPCode(rawValue: 2)
    public static let v6AddressUnreachable = ICMPCode(rawValue: 3)
    public static let v6PortUnreachable = ICMPCode(rawValue: 4)
    public static let v6RejectRoute = ICMPCode(rawValue: 6)

    // MARK: ICMPv6 time exceeded (RFC 4443 section 3.3)
    public static let v6HopLimitExceeded = ICMPCode(rawValue: 0)
    public static let v6FragmentReassemblyTimeExceeded = ICMPCode(rawValue: 1)

    public var description: String { "ICMPCode(\(rawValue))" }
}

/// RFC 1071 Internet checksum: the one's complement of the one's complement
/// sum of 16-bit big-endian words; an odd trailing byte is padded with zero.
/// Computing it over a message whose checksum field is filled in gives 0.
public func internetChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var index = 0
    while index + 1 < bytes.count {
        sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
        index += 2
    }
    if index < bytes.count {
        sum += UInt32(bytes[index]) << 8
    }
    // Fold the carries back in (RFC 1071 section 4.1); twice is always enough
    // for fewer than 2^16 words, a loop is simply obviously right.
    while sum >> 16 != 0 {
        sum = (sum & 0xFFFF) + (sum >> 16)
    }
    return ~UInt16(truncatingIfNeeded: sum)
}

/// The 8-byte echo header plus payload (RFC 792 "Echo or Echo Reply Message",
/// RFC 4443 section 4.1).
public enum ICMPEcho {
    public static let headerSize = 8

    /// Encodes an echo request. For IPv4 we compute the checksum. For IPv6
    /// it stays 0: it covers a pseudo-header with the source address we do
    /// not know, and the kernel fills it in for ICMPv6 raw sockets (RFC 3542
    /// section 3.1) and for every datagram ("ping") socket, v4 included,
    /// where it also overwrites the identifier with the socket's own.
    public static func request(family: IPFamily, identifier: UInt16, sequence: UInt16, payload: [UInt8],
                               computeChecksum: Bool) -> [UInt8] {
        // One allocation: appending the payload to an 8-byte literal grew
        // (reallocated) the array on every probe.
        var message = [UInt8](repeating: 0, count: headerSize + payload.count)
        message[0] = ICMPType.echoRequest(for: family).rawValue
        message[1] = ICMPCode.zero.rawValue
        message[4] = UInt8(identifier >> 8)
        message[5] = UInt8(identifier & 0xFF)
        message[6] = UInt8(sequence >> 8)
        message[7] = UInt8(sequence & 0xFF)
        message.replaceSubrange(headerSize..., with: payload)
        if computeChecksum && family == .v4 {
            let checksum = internetChecksum(message)
            message[2] = UInt8(checksum >> 8)
            message[3] = UInt8(checksum & 0xFF)
        }
        return message
    }
}
