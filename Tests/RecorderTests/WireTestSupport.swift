// Hand-built packets and kernel structures for the wire tests: byte-exact
// stand-ins for what Linux hands to raw sockets, ping sockets and their
// error queues, built from the RFC layouts rather than from our encoder
// (except where the test is about the encoder).

@testable import Recorder

enum Wire {
    static let v4Local = IPAddress(bytes: [127, 0, 0, 1])!
    static let v4Target = IPAddress(bytes: [198, 18, 0, 7])!
    static let v4Router = IPAddress(bytes: [192, 0, 2, 1])!
    static let v6Target = IPAddress(bytes: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7])!
    static let v6Router = IPAddress(bytes: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])!
    static let v6Local = IPAddress(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])!

    static func be16(_ value: Int) -> [UInt8] { [UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }

    /// ICMP header + payload, checksum filled in (valid for v4; v6 tests do
    /// not check it since the kernel verifies ICMPv6 checksums itself).
    static func icmp(type: UInt8, code: UInt8, rest: [UInt8] = [0, 0, 0, 0], body: [UInt8]) -> [UInt8] {
        var message = [type, code, 0, 0] + rest + body
        let checksum = internetChecksum(message)
        message[2] = UInt8(checksum >> 8)
        message[3] = UInt8(checksum & 0xFF)
        return message
    }

    static func echo(type: UInt8, identifier: UInt16, sequence: UInt16, payload: [UInt8]) -> [UInt8] {
        icmp(type: type, code: 0, rest: be16(Int(identifier)) + be16(Int(sequence)), body: payload)
    }

    /// An IPv4 header (RFC 791) with protocol ICMP unless told otherwise.
    static func ipv4(source: IPAddress, destination: IPAddress, body: [UInt8], protocolNumber: UInt8 = 1,
                     totalLength: Int? = nil) -> [UInt8] {
        var header: [UInt8] = [0x45, 0] + be16(totalLength ?? 20 + body.count) + [0x12, 0x34, 0x40, 0, 64, protocolNumber, 0, 0]
        header += source.bytes + destination.bytes
        let checksum = internetChecksum(header)
        header[10] = UInt8(checksum >> 8)
        header[11] = UInt8(checksum & 0xFF)
        return header + body
    }

    /// An IPv6 header (RFC 8200) with next header ICMPv6 unless told otherwise.
    static func ipv6(source: IPAddress, destination: IPAddress, body: [UInt8], nextHeader: UInt8 = 58,
                     payloadLength: Int? = nil) -> [UInt8] {
        [0x60, 0, 0, 0] + be16(payloadLength ?? body.count) + [nextHeader, 64] + source.bytes + destination.bytes + body
    }

    /// struct sock_extended_err + SO_EE_OFFENDER sockaddr, host byte order
    /// where the kernel uses it.
    static func extendedError(origin: UInt8, type: UInt8, code: UInt8, errno: UInt32 = 113, offender: IPAddress?) -> [UInt8] {
        var bytes = withUnsafeBytes(of: errno) { Array($0) } + [origin, type, code, 0]
        bytes += [UInt8](repeating: 0, count: 8)   // ee_info, ee_data
        bytes += sockaddr(offender)
        return bytes
    }

    /// sockaddr_in / sockaddr_in6 as the kernel fills msg_name; nil gives
    /// an AF_UNSPEC sockaddr_in-sized block (SO_EE_OFFENDER of local errors).
    static func sockaddr(_ address: IPAddress?) -> [UInt8] {
        guard let address else { return [UInt8](repeating: 0, count: 16) }
        switch address.family {
        case .v4:
            return withUnsafeBytes(of: UInt16(2)) { Array($0) } + [0, 0] + address.bytes + [UInt8](repeating: 0, count: 8)
        case .v6:
            return withUnsafeBytes(of: UInt16(10)) { Array($0) } + [0, 0, 0, 0, 0, 0] + address.bytes + [0, 0, 0, 0]
        }
    }

    /// One cmsghdr (size_t len, int level, int type, data), padded to 8.
    static func controlMessage(level: Int32, type: Int32, data: [UInt8]) -> [UInt8] {
        let length = 16 + data.count
        var bytes = withUnsafeBytes(of: UInt(length)) { Array($0) }
        bytes += withUnsafeBytes(of: level) { Array($0) } + withUnsafeBytes(of: type) { Array($0) } + data
        while bytes.count % 8 != 0 { bytes.append(0) }
        return bytes
    }

    static func timestamp(seconds: Int64, nanoseconds: Int64) -> [UInt8] {
        controlMessage(level: 1, type: 35,
                       data: withUnsafeBytes(of: seconds) { Array($0) } + withUnsafeBytes(of: nanoseconds) { Array($0) })
    }
}
