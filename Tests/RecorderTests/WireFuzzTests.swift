// Property test: well over a million random and mutated packets through
// every parser entry point. What must hold:
//  - no crash and no out-of-bounds read (a trap would kill the test run);
//  - a payload the parser hands out only decodes (ProbePayload.decode /
//    decodeQuoted) if it is byte-for-byte the canonical encoding of what it
//    decodes to, so a mutated packet of ours decodes as our probe only when
//    its payload bytes are untouched.
// Mutations keep a seeded generator, so a failure reproduces; checksums are
// recomputed on half the IPv4 raw mutants so they reach the deep paths.

import Testing
import TestSupport
@testable import Recorder

@Suite struct WireFuzzTests {
    static let probe = ProbePayload(runID: 0xDEAD_BEEF_0000_0001, targetIndex: 4, sequence: 123_456)
    static let size = 56
    static let payload = probe.encode(size: size)

    static let v4Sent = Wire.ipv4(source: Wire.v4Local, destination: Wire.v4Target,
                                  body: Wire.echo(type: 8, identifier: 0x1234, sequence: 7, payload: payload))
    static let v6Sent = Wire.ipv6(source: Wire.v6Local, destination: Wire.v6Target,
                                  body: Wire.echo(type: 128, identifier: 0x1234, sequence: 7, payload: payload))

    static let rawV4Seeds: [[UInt8]] = [
        Wire.ipv4(source: Wire.v4Target, destination: Wire.v4Local,
                  body: Wire.echo(type: 0, identifier: 0x1234, sequence: 7, payload: payload)),
        Wire.ipv4(source: Wire.v4Router, destination: Wire.v4Local, body: Wire.icmp(type: 11, code: 0, body: Array(v4Sent[0..<28]))),
        Wire.ipv4(source: Wire.v4Router, destination: Wire.v4Local, body: Wire.icmp(type: 3, code: 1, body: v4Sent)),
    ]
    static let rawV6Seeds: [[UInt8]] = [
        Wire.echo(type: 129, identifier: 0x1234, sequence: 7, payload: payload),
        Wire.icmp(type: 1, code: 3, body: v6Sent),
        Wire.icmp(type: 3, code: 0, body: Array(v6Sent[0..<60])),
    ]
    static let datagramSeeds: [[UInt8]] = [
        Wire.echo(type: 0, identifier: 0x1234, sequence: 7, payload: payload),
        Wire.echo(type: 129, identifier: 0x1234, sequence: 7, payload: payload),
    ]
    static let errorSeeds: [(extended: [UInt8], quoted: [UInt8], destination: IPAddress)] = [
        (Wire.extendedError(origin: 2, type: 3, code: 1, offender: Wire.v4Router),
         Array(Wire.echo(type: 8, identifier: 0x1234, sequence: 7, payload: payload)[0..<8]), Wire.v4Target),
        (Wire.extendedError(origin: 2, type: 11, code: 0, offender: Wire.v4Router),
         Wire.echo(type: 8, identifier: 0x1234, sequence: 7, payload: payload), Wire.v4Target),
        (Wire.extendedError(origin: 3, type: 1, code: 0, offender: Wire.v6Router),
         Wire.echo(type: 128, identifier: 0x1234, sequence: 7, payload: payload), Wire.v6Target),
    ]
    static let controlSeed = Wire.timestamp(seconds: 1_764_000_000, nanoseconds: 5)
        + Wire.controlMessage(level: 0, type: 11, data: errorSeeds[0].extended)

    /// Offsets holding versions, lengths and types, where lies hurt most.
    static let hotOffsets = [0, 1, 2, 3, 4, 5, 6, 7, 9, 20, 21, 28, 30, 31, 37, 48, 49, 52, 53]

    struct Tally {
        var packets = 0
        var parsed = 0        // not .foreign
        var ours = 0          // a payload that decodes to our probe
        var violations: [String] = []
        mutating func check(_ incoming: Incoming, input: [UInt8]) {
            packets += 1
            switch incoming {
            case .foreign: return
            case .echoReply(_, _, _, let payload, _):
                parsed += 1
                if let decoded = ProbePayload.decode(payload, expectedSize: WireFuzzTests.size) {
                    if decoded.encode(size: WireFuzzTests.size) != payload { record("non-canonical reply payload", input) }
                    if decoded == WireFuzzTests.probe {
                        ours += 1
                        if payload != WireFuzzTests.payload { record("altered payload decoded as ours", input) }
                    }
                }
            case .icmpError(_, _, _, _, _, _, _, let quoted, _):
                parsed += 1
                if let decoded = ProbePayload.decodeQuoted(quoted) {
                    if decoded.encode(size: quoted.count) != quoted { record("non-canonical quoted payload", input) }
                    if decoded == WireFuzzTests.probe {
                        ours += 1
                        // A quote cannot know the sent size: it must be our
                        // probe's encoding cut (or continued) to its length.
                        if quoted != WireFuzzTests.probe.encode(size: quoted.count) { record("altered quote decoded as ours", input) }
                    }
                }
            }
        }
        mutating func record(_ what: String, _ input: [UInt8]) {
            if violations.count < 5 { violations.append("\(what): \(input)") }
        }
    }

    static func mutate(_ seed: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        if Int.random(in: 0..<20, using: &random) == 0 {
            return (0..<Int.random(in: 0...120, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        }
        var bytes = seed
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            switch Int.random(in: 0..<6, using: &random) {
            case 0:
                bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
            case 1 where !bytes.isEmpty:
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            case 2:
                let offset = hotOffsets.randomElement(using: &random)!
                if offset < bytes.count { bytes[offset] = UInt8.random(in: 0...255, using: &random) }
            case 3:
                bytes += (0..<Int.random(in: 1...16, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            case 4 where !bytes.isEmpty:
                bytes.remove(at: Int.random(in: 0..<bytes.count, using: &random))
            case 5:
                bytes.insert(UInt8.random(in: 0...255, using: &random), at: Int.random(in: 0...bytes.count, using: &random))
            default:
                break
            }
        }
        return bytes
    }

    /// Recomputes the ICMP checksum where the (possibly mutated) IPv4
    /// header says the message is, so the mutant gets past the checksum.
    static func fixingChecksum(_ packet: [UInt8]) -> [UInt8] {
        guard packet.count >= 20 else { return packet }
        let headerLength = Int(packet[0] & 0x0F) * 4
        let total = Int(packet[2]) << 8 | Int(packet[3])
        guard headerLength >= 20, total >= headerLength + 4, total <= packet.count else { return packet }
        var fixed = packet
        fixed[headerLength + 2] = 0
        fixed[headerLength + 3] = 0
        let checksum = internetChecksum(Array(fixed[headerLength..<total]))
        fixed[headerLength + 2] = UInt8(checksum >> 8)
        fixed[headerLength + 3] = UInt8(checksum & 0xFF)
        return fixed
    }

    static let iterations = 300_000

    @Test func rawIPv4Mutants() {
        var random = SplitMix64(seed: 1)
        var tally = Tally()
        for index in 0..<Self.iterations {
            var packet = Self.mutate(Self.rawV4Seeds[index % Self.rawV4Seeds.count], &random)
            if index & 1 == 0 { packet = Self.fixingChecksum(packet) }
            tally.check(PacketParser.rawIPv4(packet, kernelReceivedNs: nil), input: packet)
        }
        Self.expectSound(tally)
    }

    @Test func rawIPv6AndDatagramMutants() {
        var random = SplitMix64(seed: 2)
        var tally = Tally()
        for index in 0..<Self.iterations {
            let message = Self.mutate(Self.rawV6Seeds[index % Self.rawV6Seeds.count], &random)
            tally.check(PacketParser.rawIPv6(message, from: Wire.v6Router, kernelReceivedNs: nil), input: message)
            let reply = Self.mutate(Self.datagramSeeds[index % 2], &random)
            tally.check(PacketParser.datagram(reply, from: index % 2 == 0 ? Wire.v4Target : Wire.v6Target,
                                              kernelReceivedNs: nil), input: reply)
        }
        Self.expectSound(tally)
    }

    @Test func errorQueueAndKernelStructureMutants() {
        var random = SplitMix64(seed: 3)
        var tally = Tally()
        for index in 0..<Self.iterations {
            let seed = Self.errorSeeds[index % Self.errorSeeds.count]
            // Mutate one side at a time so the other still parses.
            let extended = index % 3 == 0 ? Self.mutate(seed.extended, &random) : seed.extended
            let quoted = index % 3 != 0 ? Self.mutate(seed.quoted, &random) : seed.quoted
            tally.check(PacketParser.errorQueue(extendedError: extended, quoted: quoted, destination: seed.destination,
                                                kernelReceivedNs: nil), input: extended + quoted)
            let control = Self.mutate(Self.controlSeed, &random)
            let messages = PacketParser.controlMessages(control)
            if let extendedError = messages.extendedError, extendedError.count > control.count {
                tally.record("control data longer than its buffer", control)
            }
            _ = PacketParser.address(fromSockaddr: Self.mutate(Wire.sockaddr(index % 2 == 0 ? Wire.v4Router : Wire.v6Router), &random))
        }
        Self.expectSound(tally)
    }

    @Test func payloadDecoderMutants() {
        var random = SplitMix64(seed: 4)
        var tally = Tally()
        for _ in 0..<Self.iterations {
            let bytes = Self.mutate(Self.payload, &random)
            tally.check(.echoReply(from: Wire.v4Target, identifier: 0, sequence: 0, payload: bytes, kernelReceivedNs: nil), input: bytes)
            tally.check(.icmpError(family: .v4, type: 3, code: 0, reporter: Wire.v4Router, destination: Wire.v4Target,
                                   identifier: 0, sequence: 0, quotedPayload: bytes, kernelReceivedNs: nil), input: bytes)
        }
        Self.expectSound(tally)
    }

    static func expectSound(_ tally: Tally) {
        #expect(tally.violations.isEmpty, "\(tally.violations)")
        // The mutants must reach the deep paths, or the test proves nothing:
        // some parse, and some of those still carry our intact probe.
        #expect(tally.parsed > tally.packets / 20, "only \(tally.parsed) of \(tally.packets) parsed")
        #expect(tally.ours > 0)
    }
}
