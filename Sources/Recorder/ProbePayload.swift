// The bytes every probe carries after the echo header, so a reply can be
// tied to exactly one probe of exactly one recorder run.
//
// Layout, big-endian:
//   0..<4   magic "PGEM"
//   4..<12  run id (UInt64)
//   12..<16 target index (UInt32)
//   16..<24 sequence (UInt64, the full probe number; the echo header only
//           carries its low 16 bits)
//   24..<n  padding, byte i == UInt8(truncatingIfNeeded: i)
//
// Invariant: `decode` accepts only a payload byte-identical to what
// `encode(size:)` produced for the same fields and size. Datagram sockets
// deliver replies with the right id/sequence but a zeroed or truncated
// payload as is (see LINUX-ICMP.md), so every byte is checked: the padding
// pattern makes a zeroed or shifted payload fail even if the fields survive.

public struct ProbePayload: Hashable, Sendable {
    public static let magic: [UInt8] = Array("PGEM".utf8)
    /// Magic + run id + target index + sequence.
    public static let minimumSize = 24

    public var runID: UInt64
    public var targetIndex: UInt32
    public var sequence: UInt64

    public init(runID: UInt64, targetIndex: UInt32, sequence: UInt64) {
        self.runID = runID
        self.targetIndex = targetIndex
        self.sequence = sequence
    }

    /// The payload of `size` bytes; sizes below `minimumSize` are raised to
    /// it, since a probe we cannot recognise is worthless.
    public func encode(size: Int) -> [UInt8] {
        let size = max(size, Self.minimumSize)
        var bytes = [UInt8]()
        bytes.reserveCapacity(size)
        bytes.append(contentsOf: Self.magic)
        appendBigEndian(runID, to: &bytes)
        appendBigEndian(targetIndex, to: &bytes)
        appendBigEndian(sequence, to: &bytes)
        for index in Self.minimumSize..<size {
            bytes.append(UInt8(truncatingIfNeeded: index))
        }
        return bytes
    }

    /// The payload if `bytes` is exactly a payload of `expectedSize` bytes
    /// (the size the recorder sends); nil for anything truncated, padded,
    /// zeroed or altered.
    public static func decode(_ bytes: [UInt8], expectedSize: Int) -> ProbePayload? {
        // decodeQuoted checks the magic and every padding byte present; the
        // exact length is what makes this the strict form.
        guard expectedSize >= minimumSize, bytes.count == expectedSize else { return nil }
        return decodeQuoted(bytes)
    }

    /// The fields of a payload quoted in an ICMP error, which may be cut
    /// anywhere after the fields (RFC 792 routers quote only 8 bytes of the
    /// echo header, RFC 1812 ones more, RFC 4443 as much as fits in 1280).
    /// Whatever padding was quoted must still match the pattern.
    public static func decodeQuoted(_ bytes: [UInt8]) -> ProbePayload? {
        guard bytes.count >= minimumSize, Array(bytes[0..<4]) == magic else { return nil }
        for index in minimumSize..<bytes.count where bytes[index] != UInt8(truncatingIfNeeded: index) {
            return nil
        }
        return ProbePayload(runID: readBigEndian(bytes, at: 4, as: UInt64.self),
                            targetIndex: readBigEndian(bytes, at: 12, as: UInt32.self),
                            sequence: readBigEndian(bytes, at: 16, as: UInt64.self))
    }
}

fileprivate func appendBigEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    var shift = T.bitWidth - 8
    while shift >= 0 {
        bytes.append(UInt8(truncatingIfNeeded: value >> shift))
        shift -= 8
    }
}

/// Reads a big-endian integer; the caller has checked the bounds.
fileprivate func readBigEndian<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, as: T.Type) -> T {
    var value: T = 0
    for index in offset..<(offset + T.bitWidth / 8) {
        value = value << 8 | T(bytes[index])
    }
    return value
}
