// The bytes every probe carries after the echo header, so a reply can be
// tied to exactly one probe of exactly one recorder run, and carries the
// probe's own send times back with it.
//
// Layout, big-endian:
//   0..<4   magic "PGEM"
//   4..<12  run id (UInt64)
//   12..<16 target index (UInt32)
//   16..<24 sequence (UInt64, the full probe number; the echo header only
//           carries its low 16 bits)
//   24..<32 send time on the recorder's monotonic clock (Int64 ns)
//   32..<40 send time on the wall clock (Int64 ns since the epoch: sent_ns)
//   40..<48 tag: SipHash-2-4, under the run's secret key, of bytes 0..<40
//           followed by the destination address (4 or 16 bytes)
//   48..<n  padding, byte i == UInt8(truncatingIfNeeded: i)
//
// Why the times and the tag: the recorder must match a reply minutes late
// without remembering every probe of those minutes (at 1,000 probes/s, ten
// minutes of 32-byte slots were 19 MB). A reply that echoes a payload whose
// tag checks out under our key and its own source address is a reply to a
// probe we sent to that address, with exactly the times we stamped: nobody
// without the key can make one up or move it to another address (SipHash is
// a PRF; a guess succeeds with probability 2^-64). The run id and magic stay
// so that other runs and other programs are told apart before any hashing.
//
// Path probes (PathRounds.swift) carry the same layout under the magic
// "PGEP", so nothing that matches the target's own probes can take them for
// one: their sequence field holds round << 8 | ttl, and bytes 48..<50 a
// compensating word that keeps the echo's checksum the same in every probe of
// a target (Paris traceroute: a router that hashes flows over the checksum
// sends every probe of a round the same way). Their padding starts at 50.
//
// Invariant: `decode` accepts only a payload byte-identical to what
// `encode(size:)` produced for the same fields and size. Datagram sockets
// deliver replies with the right id/sequence but a zeroed or truncated
// payload as is (see LINUX-ICMP.md), so every byte is checked: the padding
// pattern makes a zeroed or shifted payload fail even if the fields survive.

public struct ProbePayload: Hashable, Sendable {
    public static let magic: [UInt8] = Array("PGEM".utf8)
    /// The magic of a path probe's payload.
    public static let pathMagic: [UInt8] = Array("PGEP".utf8)
    /// A path probe's payload: the fields, then the checksum's compensating word.
    public static let pathMinimumSize = 50
    /// Magic, run id, target index, sequence, two send times and the tag.
    public static let minimumSize = 48
    /// The bytes the tag covers, before the address.
    static let signedSize = 40

    public var runID: UInt64
    public var targetIndex: UInt32
    public var sequence: UInt64
    public var sentMonoNs: Int64
    public var sentWallNs: Int64
    public var tag: UInt64
    /// True for a path probe's payload (magic "PGEP").
    public var isPath: Bool
    /// A path probe's compensating word (bytes 48..<50); 0 in any other.
    public var compensation: UInt16 = 0

    public init(runID: UInt64, targetIndex: UInt32, sequence: UInt64,
                sentMonoNs: Int64 = 0, sentWallNs: Int64 = 0, tag: UInt64 = 0, isPath: Bool = false) {
        self.isPath = isPath
        self.runID = runID
        self.targetIndex = targetIndex
        self.sequence = sequence
        self.sentMonoNs = sentMonoNs
        self.sentWallNs = sentWallNs
        self.tag = tag
    }

    /// The payload with its tag for a probe sent to `destination`.
    public static func sealed(runID: UInt64, targetIndex: UInt32, sequence: UInt64,
                              sentMonoNs: Int64, sentWallNs: Int64,
                              key: SipHashKey, destination: IPAddress, isPath: Bool = false) -> ProbePayload {
        var p = ProbePayload(runID: runID, targetIndex: targetIndex, sequence: sequence,
                             sentMonoNs: sentMonoNs, sentWallNs: sentWallNs, isPath: isPath)
        p.tag = p.expectedTag(key: key, address: destination)
        return p
    }

    /// True when the tag is the one this run's key gives for these fields and
    /// `address` (the reply's source, or the destination an error quotes).
    public func isAuthentic(key: SipHashKey, address: IPAddress) -> Bool {
        tag == expectedTag(key: key, address: address)
    }

    private func expectedTag(key: SipHashKey, address: IPAddress) -> UInt64 {
        // On the stack: this runs for every probe sent and every reply.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.signedSize + 16) { buffer in
            var at = 0
            func put<T: FixedWidthInteger>(_ value: T) {
                var shift = T.bitWidth - 8
                while shift >= 0 {
                    buffer[at] = UInt8(truncatingIfNeeded: value >> shift)
                    at += 1
                    shift -= 8
                }
            }
            for byte in isPath ? Self.pathMagic : Self.magic { buffer[at] = byte; at += 1 }
            put(runID); put(targetIndex); put(sequence); put(sentMonoNs); put(sentWallNs)
            for byte in address.bytes { buffer[at] = byte; at += 1 }
            return sipHash24(key, UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[0..<at])))
        }
    }

    /// The payload of `size` bytes; sizes below `minimumSize` are raised to
    /// it, since a probe we cannot recognise is worthless.
    public func encode(size: Int) -> [UInt8] {
        let size = max(size, isPath ? Self.pathMinimumSize : Self.minimumSize)
        var bytes = [UInt8]()
        bytes.reserveCapacity(size)
        bytes.append(contentsOf: isPath ? Self.pathMagic : Self.magic)
        appendBigEndian(runID, to: &bytes)
        appendBigEndian(targetIndex, to: &bytes)
        appendBigEndian(sequence, to: &bytes)
        appendBigEndian(sentMonoNs, to: &bytes)
        appendBigEndian(sentWallNs, to: &bytes)
        appendBigEndian(tag, to: &bytes)
        if isPath { appendBigEndian(compensation, to: &bytes) }
        for index in bytes.count..<size {
            bytes.append(UInt8(truncatingIfNeeded: index))
        }
        return bytes
    }

    /// The payload if `bytes` is exactly a payload of `expectedSize` bytes
    /// (the size the recorder sends); nil for anything truncated, padded,
    /// zeroed or altered. Whether it is ours is `isAuthentic`'s question.
    public static func decode(_ bytes: [UInt8], expectedSize: Int) -> ProbePayload? {
        // decodeQuoted checks the magic and every padding byte present; the
        // exact length is what makes this the strict form.
        guard expectedSize >= minimumSize, bytes.count == max(expectedSize, isPathPayload(bytes) ? pathMinimumSize : 0) else { return nil }
        return decodeQuoted(bytes)
    }

    /// The fields of a payload quoted in an ICMP error, which may be cut
    /// anywhere after the fields (RFC 792 routers quote only 8 bytes of the
    /// echo header, RFC 1812 ones more, RFC 4443 as much as fits in 1280).
    /// Whatever padding was quoted must still match the pattern.
    public static func decodeQuoted(_ bytes: [UInt8]) -> ProbePayload? {
        let isPath = isPathPayload(bytes)
        let fieldsEnd = isPath ? pathMinimumSize : minimumSize
        guard bytes.count >= fieldsEnd, isPath || Array(bytes[0..<4]) == magic else { return nil }
        for index in fieldsEnd..<bytes.count where bytes[index] != UInt8(truncatingIfNeeded: index) {
            return nil
        }
        var p = ProbePayload(runID: readBigEndian(bytes, at: 4, as: UInt64.self),
                             targetIndex: readBigEndian(bytes, at: 12, as: UInt32.self),
                             sequence: readBigEndian(bytes, at: 16, as: UInt64.self),
                             sentMonoNs: readBigEndian(bytes, at: 24, as: Int64.self),
                             sentWallNs: readBigEndian(bytes, at: 32, as: Int64.self),
                             tag: readBigEndian(bytes, at: 40, as: UInt64.self), isPath: isPath)
        if isPath { p.compensation = readBigEndian(bytes, at: 48, as: UInt16.self) }
        return p
    }

    /// True when the bytes begin with a path probe's magic: such a payload
    /// (or quote) is the path rounds' business, never the target's probes'.
    public static func isPathPayload(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes[0] == pathMagic[0] && bytes[1] == pathMagic[1]
            && bytes[2] == pathMagic[2] && bytes[3] == pathMagic[3]
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
        value = value << 8 | T(truncatingIfNeeded: bytes[index])
    }
    return value
}
