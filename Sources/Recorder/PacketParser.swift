// Pure functions from what the kernel handed us to `Incoming`.
//
// Invariant: every entry point accepts any bytes at all. Every offset is
// checked against the count before it is read (through `ByteReader`, which
// answers nil instead of trapping), every length field is distrusted and
// cut to what was actually received, and anything that does not parse is
// `.foreign`: never a crash, never an out-of-bounds read. Tests feed these
// functions millions of truncated, random and lying packets.
//
// Matching against our probes (identifier, payload, source) is not done
// here, except that errors must quote an echo request: anything else can
// never be about a probe of ours.

/// Bounds-checked big-endian reads over a byte array.
fileprivate struct ByteReader {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var count: Int { bytes.count }

    func u8(_ offset: Int) -> UInt8? {
        offset >= 0 && offset < bytes.count ? bytes[offset] : nil
    }
    func u16(_ offset: Int) -> UInt16? {
        guard offset >= 0, offset + 2 <= bytes.count else { return nil }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }
    /// Bytes [start, end); nil unless the whole range is present.
    func slice(_ start: Int, _ end: Int) -> [UInt8]? {
        guard start >= 0, start <= end, end <= bytes.count else { return nil }
        return Array(bytes[start..<end])
    }
    /// A native-endian integer (kernel structs such as sockaddr family,
    /// cmsghdr, timespec are in host order, not network order).
    func native<T: FixedWidthInteger>(_ offset: Int, as: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset + size <= bytes.count else { return nil }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }
}

/// What `recvmsg` put in the control buffer that we care about.
public struct ControlMessages: Equatable, Sendable {
    /// SCM_TIMESTAMPNS: CLOCK_REALTIME nanoseconds when the kernel received
    /// the packet (kernel Documentation/networking/timestamping.rst).
    public var kernelReceivedNs: Int64?
    /// The data of an IP_RECVERR / IPV6_RECVERR message: a
    /// `struct sock_extended_err` followed by the offender's sockaddr.
    public var extendedError: [UInt8]?
    public init(kernelReceivedNs: Int64? = nil, extendedError: [UInt8]? = nil) {
        self.kernelReceivedNs = kernelReceivedNs
        self.extendedError = extendedError
    }
}

public enum PacketParser {
    // Linux ABI values not all exported by Glibc's Swift overlay.
    static let solSocket: Int32 = 1        // SOL_SOCKET
    static let scmTimestampNs: Int32 = 35  // SCM_TIMESTAMPNS (== SO_TIMESTAMPNS_OLD on 64-bit)
    static let solIP: Int32 = 0            // SOL_IP
    static let ipRecvErr: Int32 = 11       // IP_RECVERR
    static let solIPv6: Int32 = 41         // SOL_IPV6
    static let ipv6RecvErr: Int32 = 25     // IPV6_RECVERR
    static let afInet: UInt16 = 2          // AF_INET
    static let afInet6: UInt16 = 10        // AF_INET6
    /// linux/errqueue.h SO_EE_ORIGIN_ICMP / SO_EE_ORIGIN_ICMP6. Other origins
    /// (LOCAL = 1, e.g. EMSGSIZE; TIMESTAMPING = 4) are not network answers.
    static let eeOriginICMP: UInt8 = 2
    static let eeOriginICMP6: UInt8 = 3
    /// sizeof(struct sock_extended_err): errno u32, origin, type, code, pad,
    /// info u32, data u32. SO_EE_OFFENDER(ee) is the sockaddr right after it.
    static let extendedErrorSize = 16

    // MARK: Raw sockets

    /// A packet from an IPv4 raw ICMP socket: Linux includes the IP header
    /// (raw(7)), with tot_len in network order as on the wire.
    public static func rawIPv4(_ packet: [UInt8], kernelReceivedNs: Int64?) -> Incoming {
        let ip = ByteReader(packet)
        guard let versionIHL = ip.u8(0), versionIHL >> 4 == 4 else { return .foreign }
        let headerLength = Int(versionIHL & 0x0F) * 4
        guard headerLength >= 20, let totalLength = ip.u16(2).map(Int.init),
              totalLength >= headerLength + ICMPEcho.headerSize, totalLength <= packet.count,
              ip.u8(9) == 1, let source = ip.slice(12, 16).flatMap(IPAddress.init(bytes:)),
              let message = ip.slice(headerLength, totalLength)
        else { return .foreign }
        // The kernel hands raw sockets ICMP before icmp_rcv checks the
        // checksum, so a corrupted packet would reach us: drop it here.
        guard internetChecksum(message) == 0 else { return .foreign }
        let icmp = ByteReader(message)
        guard let type = icmp.u8(0).map(ICMPType.init(rawValue:)), let code = icmp.u8(1) else { return .foreign }
        if type == .echoReply {
            return echoReply(icmp, family: .v4, from: source, kernelReceivedNs: kernelReceivedNs)
        }
        guard ICMPType.isQuotingError(type, family: .v4) else { return .foreign }
        guard let quote = icmp.slice(ICMPEcho.headerSize, icmp.count),
              let (destination, echo) = quotedIPv4Echo(ByteReader(quote))
        else { return .foreign }
        return quotedError(echo, family: .v4, type: type.rawValue, code: code, reporter: source,
                           destination: destination, kernelReceivedNs: kernelReceivedNs)
    }

    /// A message from an IPv6 raw ICMPv6 socket: no IP header (RFC 3542
    /// section 3), the source comes from msg_name.
    public static func rawIPv6(_ message: [UInt8], from source: IPAddress, kernelReceivedNs: Int64?) -> Incoming {
        guard source.family == .v6 else { return .foreign }
        let icmp = ByteReader(message)
        guard let type = icmp.u8(0).map(ICMPType.init(rawValue:)), let code = icmp.u8(1) else { return .foreign }
        if type == .v6EchoReply {
            return echoReply(icmp, family: .v6, from: source, kernelReceivedNs: kernelReceivedNs)
        }
        guard ICMPType.isQuotingError(type, family: .v6),
              let quote = icmp.slice(ICMPEcho.headerSize, icmp.count),
              let (destination, echo) = quotedIPv6Echo(ByteReader(quote))
        else { return .foreign }
        return quotedError(echo, family: .v6, type: type.rawValue, code: code, reporter: source,
                           destination: destination, kernelReceivedNs: kernelReceivedNs)
    }

    // MARK: Datagram ("ping") sockets

    /// A reply read from a datagram socket: the kernel strips the IP header
    /// for both families and delivers only echo replies for our identifier,
    /// but it does not look at the rest, so we check it all the same.
    public static func datagram(_ message: [UInt8], from source: IPAddress, kernelReceivedNs: Int64?) -> Incoming {
        let icmp = ByteReader(message)
        guard icmp.u8(0) == ICMPType.echoReply(for: source.family).rawValue else { return .foreign }
        return echoReply(icmp, family: source.family, from: source, kernelReceivedNs: kernelReceivedNs)
    }

    /// A message read with MSG_ERRQUEUE from a datagram socket.
    /// `extendedError` is the IP_RECVERR / IPV6_RECVERR control data,
    /// `quoted` the data read (the quoted original ICMP echo request, from
    /// its 8-byte header on), `destination` msg_name (the probe's target).
    public static func errorQueue(extendedError: [UInt8], quoted: [UInt8], destination: IPAddress,
                                  kernelReceivedNs: Int64?) -> Incoming {
        let error = ByteReader(extendedError)
        guard let origin = error.u8(4), let type = error.u8(5), let code = error.u8(6) else { return .foreign }
        let family: IPFamily
        switch origin {
        case eeOriginICMP: family = .v4
        case eeOriginICMP6: family = .v6
        default: return .foreign
        }
        guard destination.family == family,
              ICMPType.isQuotingError(ICMPType(rawValue: type), family: family),
              let reporter = address(fromSockaddr: error.slice(extendedErrorSize, error.count) ?? []),
              reporter.family == family
        else { return .foreign }
        let echo = ByteReader(quoted)
        guard echo.u8(0) == ICMPType.echoRequest(for: family).rawValue, echo.count >= ICMPEcho.headerSize else {
            return .foreign
        }
        return quotedError(echo, family: family, type: type, code: code, reporter: reporter,
                           destination: destination, kernelReceivedNs: kernelReceivedNs)
    }

    // MARK: Kernel structures

    /// An IPv4 or IPv6 address from a `sockaddr_in` / `sockaddr_in6` (as in
    /// msg_name or SO_EE_OFFENDER); nil for any other family or a short buffer.
    public static func address(fromSockaddr bytes: [UInt8]) -> IPAddress? {
        let sockaddr = ByteReader(bytes)
        switch sockaddr.native(0, as: UInt16.self) {
        case afInet: return sockaddr.slice(4, 8).flatMap(IPAddress.init(bytes:))      // sin_addr
        case afInet6:  // sin6_addr, then sin6_scope_id: a link-local source's interface
            return sockaddr.slice(8, 24).flatMap { IPAddress(bytes: $0, scopeID: sockaddr.native(24, as: UInt32.self) ?? 0) }
        default: return nil
        }
    }

    /// Walks a control buffer of `cmsghdr`s as CMSG_FIRSTHDR/CMSG_NXTHDR do
    /// (macros Swift cannot call): a header of size_t len, int level, int
    /// type, data after it, each message aligned to sizeof(size_t).
    public static func controlMessages(_ control: [UInt8]) -> ControlMessages {
        let reader = ByteReader(control)
        let word = MemoryLayout<Int>.size
        let headerSize = word + 8
        var result = ControlMessages()
        var offset = 0
        while let length = reader.native(offset, as: UInt.self).map(Int.init(truncatingIfNeeded:)),
              let level = reader.native(offset + word, as: Int32.self),
              let type = reader.native(offset + word + 4, as: Int32.self) {
            // A lying cmsg_len must neither overflow nor reach past the buffer.
            guard length >= headerSize, length <= reader.count - offset,
                  let data = reader.slice(offset + headerSize, offset + length) else { break }
            if level == solSocket && type == scmTimestampNs {
                let timespec = ByteReader(data)
                if let seconds = timespec.native(0, as: Int64.self), let nanoseconds = timespec.native(8, as: Int64.self) {
                    let (scaled, overflow1) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
                    let (total, overflow2) = scaled.addingReportingOverflow(nanoseconds)
                    if !overflow1 && !overflow2 { result.kernelReceivedNs = total }
                }
            } else if (level == solIP && type == ipRecvErr) || (level == solIPv6 && type == ipv6RecvErr) {
                result.extendedError = data
            }
            offset += (length + word - 1) / word * word
        }
        return result
    }

    // MARK: Pieces

    private static func echoReply(_ icmp: ByteReader, family: IPFamily, from source: IPAddress,
                                  kernelReceivedNs: Int64?) -> Incoming {
        // Echo replies carry code 0 (RFC 792, RFC 4443 section 4.2).
        guard source.family == family, icmp.u8(1) == 0,
              let identifier = icmp.u16(4), let sequence = icmp.u16(6),
              let payload = icmp.slice(ICMPEcho.headerSize, icmp.count)
        else { return .foreign }
        return .echoReply(from: source, identifier: identifier, sequence: sequence, payload: payload,
                          kernelReceivedNs: kernelReceivedNs)
    }

    /// From an echo request header + payload (already cut to its true length).
    private static func quotedError(_ echo: ByteReader, family: IPFamily, type: UInt8, code: UInt8,
                                    reporter: IPAddress, destination: IPAddress, kernelReceivedNs: Int64?) -> Incoming {
        guard echo.u8(0) == ICMPType.echoRequest(for: family).rawValue,
              let identifier = echo.u16(4), let sequence = echo.u16(6),
              let payload = echo.slice(ICMPEcho.headerSize, echo.count)
        else { return .foreign }
        return .icmpError(family: family, type: type, code: code, reporter: reporter, destination: destination,
                          identifier: identifier, sequence: sequence, quotedPayload: payload,
                          kernelReceivedNs: kernelReceivedNs)
    }

    /// The quoted IPv4 header + echo request of an ICMP error (RFC 792:
    /// "Internet Header + 64 bits of Original Data Datagram"). The quote is
    /// cut to the quoted total length, which drops RFC 4884 extensions and
    /// trailing padding; a quote shorter than the header it claims, or not
    /// an ICMP echo request, is not about us.
    private static func quotedIPv4Echo(_ quote: ByteReader) -> (IPAddress, ByteReader)? {
        guard let versionIHL = quote.u8(0), versionIHL >> 4 == 4 else { return nil }
        let headerLength = Int(versionIHL & 0x0F) * 4
        guard headerLength >= 20, let totalLength = quote.u16(2).map(Int.init),
              totalLength >= headerLength + ICMPEcho.headerSize, quote.u8(9) == 1,
              let destination = quote.slice(16, 20).flatMap(IPAddress.init(bytes:)),
              let echo = quote.slice(headerLength, min(totalLength, quote.count)),
              echo.count >= ICMPEcho.headerSize
        else { return nil }
        return (destination, ByteReader(echo))
    }

    /// The quoted IPv6 header + echo request of an ICMPv6 error (RFC 4443
    /// section 2.4: as much of the invoking packet as fits in 1280 bytes).
    /// Only a quoted packet whose next header is ICMPv6 (58) directly is
    /// ours: we send no extension headers, so we do not walk them.
    private static func quotedIPv6Echo(_ quote: ByteReader) -> (IPAddress, ByteReader)? {
        let headerLength = 40
        guard let version = quote.u8(0), version >> 4 == 6, quote.u8(6) == 58,
              let payloadLength = quote.u16(4).map(Int.init), payloadLength >= ICMPEcho.headerSize,
              let destination = quote.slice(24, 40).flatMap(IPAddress.init(bytes:)),
              let echo = quote.slice(headerLength, min(headerLength + payloadLength, quote.count)),
              echo.count >= ICMPEcho.headerSize
        else { return nil }
        return (destination, ByteReader(echo))
    }
}
