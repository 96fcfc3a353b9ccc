import Testing
@testable import Recorder

@Suite struct WirePayloadTests {
    let probe = ProbePayload(runID: 0x0102_0304_0506_0708, targetIndex: 0xA0B0_C0D0, sequence: 0x1122_3344_5566_7788,
                             sentMonoNs: 0x0A0B_0C0D_0E0F_1011, sentWallNs: -2, tag: 0xF0E0_D0C0_B0A0_9080)

    @Test func layoutIsBigEndianWithPatternPadding() {
        let bytes = probe.encode(size: 64)
        #expect(bytes.count == 64)
        #expect(Array(bytes[0..<4]) == Array("PGEM".utf8))
        #expect(Array(bytes[4..<12]) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(Array(bytes[12..<16]) == [0xA0, 0xB0, 0xC0, 0xD0])
        #expect(Array(bytes[16..<24]) == [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88])
        #expect(Array(bytes[24..<32]) == [0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11])
        #expect(Array(bytes[32..<40]) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE])
        #expect(Array(bytes[40..<48]) == [0xF0, 0xE0, 0xD0, 0xC0, 0xB0, 0xA0, 0x90, 0x80])
        #expect(Array(bytes[48..<64]) == (48..<64).map { UInt8($0) })
    }

    // SipHash-2-4 reference vectors (the reference implementation's
    // vectors.h): key 00 01 .. 0f, message 00 01 .. (n-1).
    @Test func sipHashMatchesTheReferenceVectors() {
        let key = SipHashKey(k0: 0x0706_0504_0302_0100, k1: 0x0F0E_0D0C_0B0A_0908)
        let expected: [Int: UInt64] = [
            0: 0x726F_DB47_DD0E_0E31, 1: 0x74F8_39C5_93DC_67FD, 7: 0xAB02_00F5_8B01_D137,
            8: 0x93F5_F579_9A93_2462, 15: 0xA129_CA61_49BE_45E5, 16: 0x3F2A_CC7F_57C2_9BDB,
            63: 0x958A_324C_EB06_4572,
        ]
        for (length, tag) in expected {
            let message = (0..<length).map { UInt8($0) }
            #expect(message.withUnsafeBytes { sipHash24(key, $0) } == tag, "length \(length)")
        }
    }

    @Test func theTagBindsEveryFieldTheKeyAndTheAddress() {
        let key = SipHashKey(k0: 1, k1: 2)
        let a = IPAddress(parsing: "198.18.0.2")!
        let sealed = ProbePayload.sealed(runID: 9, targetIndex: 1, sequence: 77, sentMonoNs: 5_000, sentWallNs: 6_000,
                                         key: key, destination: a)
        #expect(sealed.isAuthentic(key: key, address: a))
        #expect(!sealed.isAuthentic(key: SipHashKey(k0: 1, k1: 3), address: a))
        #expect(!sealed.isAuthentic(key: key, address: IPAddress(parsing: "198.18.0.3")!))
        #expect(!sealed.isAuthentic(key: key, address: IPAddress(parsing: "::ffff:198.18.0.2")!))
        let altered: [ProbePayload] = [
            { var p = sealed; p.runID ^= 1; return p }(),
            { var p = sealed; p.targetIndex ^= 1; return p }(),
            { var p = sealed; p.sequence ^= 1 << 40; return p }(),
            { var p = sealed; p.sentMonoNs -= 1; return p }(),
            { var p = sealed; p.sentWallNs += 1; return p }(),
            { var p = sealed; p.tag ^= 1 << 63; return p }(),
        ]
        for p in altered { #expect(!p.isAuthentic(key: key, address: a)) }
        // What goes on the wire decodes back to the same authentic payload.
        let decoded = ProbePayload.decode(sealed.encode(size: 56), expectedSize: 56)
        #expect(decoded == sealed && decoded?.isAuthentic(key: key, address: a) == true)
    }

    @Test(arguments: [48, 49, 56, 255, 256, 257, 1472, 9000])
    func roundTrip(size: Int) {
        let bytes = probe.encode(size: size)
        #expect(bytes.count == size)
        #expect(ProbePayload.decode(bytes, expectedSize: size) == probe)
        #expect(ProbePayload.decodeQuoted(bytes) == probe)
    }

    @Test func padPatternWrapsAt256() {
        let bytes = probe.encode(size: 600)
        #expect(bytes[256] == 0 && bytes[511] == 255 && bytes[599] == UInt8(599 & 0xFF))
    }

    @Test func sizeFloorIsTheFields() {
        #expect(ProbePayload.minimumSize == 48)
        #expect(probe.encode(size: 0).count == 48)
        #expect(probe.encode(size: 47).count == 48)
        #expect(ProbePayload.decode(probe.encode(size: 48), expectedSize: 47) == nil)
    }

    @Test func wrongLengthRejected() {
        let bytes = probe.encode(size: 64)
        #expect(ProbePayload.decode(bytes, expectedSize: 63) == nil)
        #expect(ProbePayload.decode(bytes, expectedSize: 65) == nil)
        #expect(ProbePayload.decode(Array(bytes.dropLast()), expectedSize: 64) == nil)
        #expect(ProbePayload.decode(bytes + [64], expectedSize: 64) == nil)   // even the right next pad byte
    }

    @Test func wrongMagicRejected() {
        var bytes = probe.encode(size: 64)
        bytes[0] = UInt8(ascii: "X")
        #expect(ProbePayload.decode(bytes, expectedSize: 64) == nil)
        #expect(ProbePayload.decodeQuoted(bytes) == nil)
    }

    @Test func otherRunDecodesAsOtherRun() {
        // A reply from another run (same host, other recorder) still decodes,
        // but as that run: the engine compares run ids.
        let other = ProbePayload(runID: 99, targetIndex: probe.targetIndex, sequence: probe.sequence)
        let decoded = ProbePayload.decode(other.encode(size: 64), expectedSize: 64)
        #expect(decoded == other)
        #expect(decoded != probe)
    }

    @Test func zeroedAndAlteredPaddingRejected() {
        let bytes = probe.encode(size: 64)
        #expect(ProbePayload.decode([UInt8](repeating: 0, count: 64), expectedSize: 64) == nil)
        var zeroedTail = bytes
        for index in 48..<64 { zeroedTail[index] = 0 }
        #expect(ProbePayload.decode(zeroedTail, expectedSize: 64) == nil)
        #expect(ProbePayload.decodeQuoted(zeroedTail) == nil)
        for index in 48..<64 {
            var altered = bytes
            altered[index] ^= 0x01
            #expect(ProbePayload.decode(altered, expectedSize: 64) == nil)
        }
    }

    @Test func quotedMayBeCutAfterTheFields() {
        let bytes = probe.encode(size: 64)
        #expect(ProbePayload.decodeQuoted(Array(bytes[0..<48])) == probe)
        #expect(ProbePayload.decodeQuoted(Array(bytes[0..<50])) == probe)
        #expect(ProbePayload.decodeQuoted(Array(bytes[0..<47])) == nil)
        #expect(ProbePayload.decodeQuoted([]) == nil)
    }

    @Test func checksumMatchesRFC1071Example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        #expect(internetChecksum([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]) == ~UInt16(0xddf2))
        // Odd length pads a zero byte.
        #expect(internetChecksum([0x01]) == ~UInt16(0x0100))
        #expect(internetChecksum([]) == 0xFFFF)
    }

    @Test func echoRequestEncoding() {
        let payload = probe.encode(size: 52)
        let v4 = ICMPEcho.request(family: .v4, identifier: 0xBEEF, sequence: 0x0102, payload: payload, computeChecksum: true)
        #expect(Array(v4[0..<2]) == [8, 0])
        #expect(Array(v4[4..<8]) == [0xBE, 0xEF, 0x01, 0x02])
        #expect(Array(v4[8...]) == payload)
        #expect(internetChecksum(v4) == 0)   // a filled-in checksum sums to zero
        let v4Kernel = ICMPEcho.request(family: .v4, identifier: 1, sequence: 2, payload: payload, computeChecksum: false)
        #expect(v4Kernel[2] == 0 && v4Kernel[3] == 0)
        let v6 = ICMPEcho.request(family: .v6, identifier: 0xBEEF, sequence: 0x0102, payload: payload, computeChecksum: true)
        #expect(Array(v6[0..<8]) == [128, 0, 0, 0, 0xBE, 0xEF, 0x01, 0x02])
    }
}
