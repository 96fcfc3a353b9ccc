// Wire formats for what the responder reads from and writes to the TUN
// device. With IFF_NO_PI each read/write is exactly one IP packet, no
// link-layer header and no 4-byte packet-information prefix.

/// RFC 1071 Internet checksum: the one's complement of the one's complement
/// sum of the data as big-endian 16-bit words, an odd last byte padded with 0.
func internetChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var index = 0
    while index + 1 < bytes.count {
        sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
        index += 2
    }
    if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

func bigEndian(_ bytes: ArraySlice<UInt8>) -> UInt64 {
    bytes.reduce(0) { $0 << 8 | UInt64($1) }
}

func appendBigEndian16(_ value: UInt16, to bytes: inout [UInt8]) {
    bytes.append(UInt8(value >> 8)); bytes.append(UInt8(value & 0xFF))
}

/// The pingem probe payload, big-endian: "PGEM", run id (UInt64), target
/// index (UInt32), sequence (UInt64); the sequence sits at offset 16.
struct PingemPayload: Sendable {
    var runID: UInt64
    var targetIndex: UInt32
    var sequence: UInt64

    init?(_ payload: [UInt8]) {
        guard payload.count >= 24, payload[0..<4] == [0x50, 0x47, 0x45, 0x4D][...] else { return nil }
        runID = bigEndian(payload[4..<12])
        targetIndex = UInt32(bigEndian(payload[12..<16]))
        sequence = bigEndian(payload[16..<24])
    }
}

/// An ICMP echo request as read from the TUN.
struct EchoRequest: Sendable {
    /// 4 or 6.
    var family: Int
    var source: [UInt8]
    var destination: [UInt8]
    /// The whole IP packet as received (up to the IP total/payload length).
    var packet: [UInt8]
    /// The IPv4 header including options (empty for IPv6).
    var ipv4Header: [UInt8]
    var identifier: UInt16
    var sequence: UInt16
    /// ICMP data after the 8-byte echo header.
    var payload: [UInt8]

    /// Parses one packet; nil for anything but an unfragmented echo request
    /// (the kernel also sends e.g. IPv6 router solicitations and MLD reports
    /// into the TUN; they are none of our business).
    init?(packet raw: [UInt8]) {
        guard let first = raw.first else { return nil }
        let icmp: ArraySlice<UInt8>
        switch first >> 4 {
        case 4:
            // RFC 791: IHL in 32-bit words; protocol at 9; addresses at 12 and 16.
            let headerLength = Int(first & 0x0F) * 4
            guard raw.count >= 20, headerLength >= 20, raw.count >= headerLength else { return nil }
            let totalLength = min(Int(raw[2]) << 8 | Int(raw[3]), raw.count)
            let fragment = UInt16(raw[6]) << 8 | UInt16(raw[7])
            guard raw[9] == 1, fragment & 0x3FFF == 0, totalLength >= headerLength + 8 else { return nil }
            family = 4
            packet = Array(raw[0..<totalLength])
            ipv4Header = Array(raw[0..<headerLength])
            source = Array(raw[12..<16]); destination = Array(raw[16..<20])
            icmp = packet[headerLength...]
            guard icmp[icmp.startIndex] == 8, icmp[icmp.startIndex + 1] == 0 else { return nil }  // RFC 792 echo
        case 6:
            // RFC 8200: payload length at 4, next header at 6, addresses at 8 and 24.
            // Echo from a local socket carries no extension headers, so the
            // next header must be ICMPv6 (58) itself.
            guard raw.count >= 48 else { return nil }
            let total = min(40 + (Int(raw[4]) << 8 | Int(raw[5])), raw.count)
            guard raw[6] == 58, total >= 48 else { return nil }
            family = 6
            packet = Array(raw[0..<total])
            ipv4Header = []
            source = Array(raw[8..<24]); destination = Array(raw[24..<40])
            icmp = packet[40...]
            guard icmp[icmp.startIndex] == 128, icmp[icmp.startIndex + 1] == 0 else { return nil }  // RFC 4443 §4.1
        default:
            return nil
        }
        let start = icmp.startIndex
        identifier = UInt16(icmp[start + 4]) << 8 | UInt16(icmp[start + 5])
        sequence = UInt16(icmp[start + 6]) << 8 | UInt16(icmp[start + 7])
        payload = Array(icmp[(start + 8)...])
    }

    /// The TOS byte (IPv4, RFC 791 byte 1) or traffic class (IPv6, RFC 8200:
    /// the 8 bits after the 4-bit version) the request carried.
    var trafficClass: Int {
        family == 4 ? Int(packet[1]) : Int((packet[0] & 0x0F) << 4 | packet[1] >> 4)
    }

    /// The TTL (IPv4, RFC 791 byte 8) or hop limit (IPv6, RFC 8200 byte 7)
    /// the request arrived with.
    var hopLimit: Int { Int(packet[family == 4 ? 8 : 7]) }

    /// The request's ICMP checksum field as received.
    var checksum: UInt16 {
        let start = family == 4 ? ipv4Header.count : 40
        return UInt16(packet[start + 2]) << 8 | UInt16(packet[start + 3])
    }

    /// The ICMP message bytes (type through end of data) of the request.
    var icmpMessage: ArraySlice<UInt8> {
        packet[(family == 4 ? ipv4Header.count : 40)...]
    }
}

/// One IP packet carrying `icmp` (its checksum field, bytes 2-3, is filled
/// in here) from `source` to `destination`.
func ipPacket(source: [UInt8], destination: [UInt8], icmp message: [UInt8]) -> [UInt8] {
    var icmp = message
    icmp[2] = 0; icmp[3] = 0
    if source.count == 4 {
        // RFC 792: the ICMP checksum covers the ICMP message only.
        let checksum = internetChecksum(icmp)
        icmp[2] = UInt8(checksum >> 8); icmp[3] = UInt8(checksum & 0xFF)
        // RFC 791 header without options: version 4, IHL 5, TTL 64, protocol 1.
        var header: [UInt8] = [0x45, 0]
        appendBigEndian16(UInt16(20 + icmp.count), to: &header)
        header += [0, 0, 0, 0, 64, 1, 0, 0]
        header += source + destination
        let headerChecksum = internetChecksum(header)
        header[10] = UInt8(headerChecksum >> 8); header[11] = UInt8(headerChecksum & 0xFF)
        return header + icmp
    } else {
        // RFC 4443 §2.3: the ICMPv6 checksum also covers the RFC 2463 §8.1
        // (now RFC 8200 §8.1) pseudo-header: source, destination, 32-bit
        // upper-layer length, 3 zero bytes, next header 58.
        let length = UInt32(icmp.count)
        var pseudo = source + destination
        pseudo += [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        pseudo += [0, 0, 0, 58]
        let checksum = internetChecksum(pseudo + icmp)
        icmp[2] = UInt8(checksum >> 8); icmp[3] = UInt8(checksum & 0xFF)
        // Version 6, traffic class and flow label 0, next header 58, hop limit 64.
        var header: [UInt8] = [0x60, 0, 0, 0]
        appendBigEndian16(UInt16(icmp.count), to: &header)
        header += [58, 64]
        header += source + destination
        return header + icmp
    }
}

/// An echo reply to `request` (RFC 792 type 0 / RFC 4443 §4.2 type 129) with
/// the request's id and sequence and the given data.
func echoReply(to request: EchoRequest, payload: [UInt8]) -> [UInt8] {
    var icmp: [UInt8] = [request.family == 4 ? 0 : 129, 0, 0, 0]
    appendBigEndian16(request.identifier, to: &icmp)
    appendBigEndian16(request.sequence, to: &icmp)
    icmp += payload
    return ipPacket(source: request.destination, destination: request.source, icmp: icmp)
}

/// IPv6's minimum MTU (RFC 8200 §5); RFC 4443 §2.4(c) says an error message
/// quotes as much of the offending packet as fits in it.
let ipv6MinimumMTU = 1280

/// Destination unreachable for `request`, sent by `router`: IPv4 type 3 code 1
/// (host unreachable) quoting the IP header and the first 8 data bytes as RFC
/// 792 asks (28 bytes for an option-less header), IPv6 type 1 code 3 (address
/// unreachable) quoting as much of the packet as fits in 1280 bytes.
func destinationUnreachable(for request: EchoRequest, router: [UInt8]) -> [UInt8] {
    var icmp: [UInt8]
    if request.family == 4 {
        icmp = [3, 1, 0, 0, 0, 0, 0, 0]  // type, code, checksum, 4 unused bytes
        icmp += request.ipv4Header + request.icmpMessage.prefix(8)
    } else {
        icmp = [1, 3, 0, 0, 0, 0, 0, 0]
        icmp += request.packet.prefix(ipv6MinimumMTU - 40 - 8)
    }
    return ipPacket(source: router, destination: request.source, icmp: icmp)
}
