import Testing
@testable import Recorder

@Suite struct WirePayloadTests {
    let probe = ProbePayload(runID: 0x0102_0304_0506_0708, targetIndex: 0xA0B0_C0D0, sequence: 0x1122_3344_5566_7788)

    @Test func layoutIsBigEndianWithPatternPadding() {
        let bytes = probe.encode(size: 40)
        #expect(bytes.count == 40)
        #expect(Array(bytes[0..<4]) == Array("PGEM".utf8))
        #expect(Array(bytes[4..<12]) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(Array(bytes[12..<16]) == [0xA0, 0xB0, 0xC0, 0xD0])
        #expect(Array(bytes[16..<24]) == [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88])
        #expect(Array(bytes[24..<40]) == (24..<40).map { UInt8($0) })
    }

    @Test(arguments: [24, 25, 56, 255, 256, 257, 1472, 9000])
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
        #expect(ProbePayload.minimumSize == 24)
        #expect(probe.encode(size: 0).count == 24)
        #expect(probe.encode(size: 23).count == 24)
        #expect(ProbePayload.decode(probe.encode(size: 24), expectedSize: 23) == nil)
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
        for index in 24..<64 { zeroedTail[index] = 0 }
        #expect(ProbePayload.decode(zeroedTail, expectedSize: 64) == nil)
        #expect(ProbePayload.decodeQuoted(zeroedTail) == nil)
        for index in 24..<64 {
            var altered = bytes
            altered[index] ^= 0x01
            #expect(ProbePayload.decode(altered, expectedSize: 64) == nil)
        }
    }

    @Test func quotedMayBeCutAfterTheFields() {
        let bytes = probe.encode(size: 64)
        #expect(ProbePayload.decodeQuoted(Array(bytes[0..<24])) == probe)
        #expect(ProbePayload.decodeQuoted(Array(bytes[0..<30])) == probe)
        #expect(ProbePayload.decodeQuoted(Array(bytes[0..<23])) == nil)
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
        let payload = probe.encode(size: 32)
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
