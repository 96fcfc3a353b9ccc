// SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
// 2012): the keyed 64-bit tag that lets a reply prove it echoes a probe this
// run sent, without the recorder remembering the probe (ProbePayload).
// Test vectors from the paper's appendix A are in WirePayloadTests.

/// A 128-bit SipHash key; each recorder run draws its own from getrandom(2)
/// and never writes it anywhere.
public struct SipHashKey: Sendable, Hashable {
    public var k0: UInt64
    public var k1: UInt64
    public init(k0: UInt64, k1: UInt64) { self.k0 = k0; self.k1 = k1 }

    public static func random() -> SipHashKey {
        var generator = SystemRandomNumberGenerator()  // getrandom(2)
        return SipHashKey(k0: generator.next(), k1: generator.next())
    }
}

/// SipHash-2-4 of `message` under `key` (the paper's byte order: key and
/// message words little-endian).
public func sipHash24(_ key: SipHashKey, _ message: UnsafeRawBufferPointer) -> UInt64 {
    var v0: UInt64 = 0x736f_6d65_7073_6575 ^ key.k0
    var v1: UInt64 = 0x646f_7261_6e64_6f6d ^ key.k1
    var v2: UInt64 = 0x6c79_6765_6e65_7261 ^ key.k0
    var v3: UInt64 = 0x7465_6462_7974_6573 ^ key.k1

    @inline(__always) func round() {
        v0 &+= v1; v1 = v1.rotl(13); v1 ^= v0; v0 = v0.rotl(32)
        v2 &+= v3; v3 = v3.rotl(16); v3 ^= v2
        v0 &+= v3; v3 = v3.rotl(21); v3 ^= v0
        v2 &+= v1; v1 = v1.rotl(17); v1 ^= v2; v2 = v2.rotl(32)
    }

    let count = message.count
    var offset = 0
    while offset + 8 <= count {
        let m = UInt64(littleEndian: message.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        v3 ^= m; round(); round(); v0 ^= m
        offset += 8
    }
    var last = UInt64(truncatingIfNeeded: count) << 56
    var shift: UInt64 = 0
    while offset < count {
        last |= UInt64(message[offset]) << shift
        shift += 8
        offset += 1
    }
    v3 ^= last; round(); round(); v0 ^= last
    v2 ^= 0xff
    round(); round(); round(); round()
    return v0 ^ v1 ^ v2 ^ v3
}

extension UInt64 {
    @inline(__always) fileprivate func rotl(_ n: UInt64) -> UInt64 { self << n | self >> (64 - n) }
}
