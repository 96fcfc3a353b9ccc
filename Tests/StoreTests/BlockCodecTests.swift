import Foundation
import Testing
import TestSupport
@testable import Store

/// The block codec gives back every probe bit for bit, for realistic and
/// hostile inputs, and refuses damaged bytes with a StoreError.
@Suite struct BlockCodecTests {
    func roundTrip(_ probes: [ProbeRecord], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bytes = BlockCodec.encode(probes)
        var decoded: [ProbeRecord] = []
        try bytes.withUnsafeBytes { try BlockCodec.decode($0, targetID: probes.first?.targetID ?? 7, into: &decoded) }
        #expect(decoded == probes, sourceLocation: sourceLocation)
    }

    /// One hour of one target at 1 s: tens of µs of send noise at ns
    /// resolution, 2 ms of RTT jitter, some loss and an outage.
    static func noisyHour(seed: UInt64, count: Int = 3600) -> [ProbeRecord] {
        var random = SplitMix64(seed: seed)
        let t0: Int64 = 1_767_225_600_000_000_000
        return (0..<count).map { i in
            let sent = t0 + Int64(i) * 1_000_000_000 + Int64.random(in: 0..<80_000, using: &random)
            if (1000..<1040).contains(i) { return ProbeRecord(sentNs: sent, targetID: 3, sendError: 101) }
            if Int.random(in: 0..<200, using: &random) == 0 { return ProbeRecord(sentNs: sent, targetID: 3) }
            return ProbeRecord(sentNs: sent, targetID: 3, rttNs: 20_000_000 + Int64.random(in: -4_000_000...4_000_000, using: &random))
        }
    }

    @Test func realisticHourRoundTripsInAboutSixBytesPerProbe() throws {
        let probes = Self.noisyHour(seed: 1)
        try roundTrip(probes)
        let size = BlockCodec.encode(probes).count
        // Uniform noise is harder than the generator's; still well under 8.
        #expect(Double(size) / Double(probes.count) < 7)
    }

    @Test func emptyAndSingleProbes() throws {
        try roundTrip([])
        try roundTrip([ProbeRecord(sentNs: 5, targetID: 7)])
        try roundTrip([ProbeRecord(sentNs: -5, targetID: 7, rttNs: -3)])
        try roundTrip([ProbeRecord(sentNs: 0, targetID: 7, rttNs: 1, sendError: -1)])
    }

    @Test func extremesAndJumps() throws {
        try roundTrip([
            ProbeRecord(sentNs: .min, targetID: 7, rttNs: .max),
            ProbeRecord(sentNs: .max, targetID: 7, rttNs: .min),
            ProbeRecord(sentNs: 0, targetID: 7, rttNs: 0, sendError: .max),
            ProbeRecord(sentNs: .min, targetID: 7, sendError: .min),
            ProbeRecord(sentNs: .max, targetID: 7, rttNs: -1, sendError: 0),
        ])
        // Huge jumps in a regular stream (a gap, a wall clock step back).
        var probes = (0..<100).map { ProbeRecord(sentNs: Int64($0) * 1_000_000_000, targetID: 7, rttNs: 20_000_000) }
        probes[50].sentNs += 3_000_000_000_000
        probes[70].sentNs -= 3_000_000_000_000
        probes[80].rttNs = -7
        probes[81].rttNs = 9_000_000_000_000
        try roundTrip(probes)
    }

    @Test func allLostAllErrorsAndIrregular() throws {
        try roundTrip((0..<500).map { ProbeRecord(sentNs: Int64($0) * 1_000_000_000, targetID: 7) })
        try roundTrip((0..<500).map { ProbeRecord(sentNs: Int64($0) * 10_000_000, targetID: 7, sendError: [101, 113, -1][$0 % 3]) })
        var random = SplitMix64(seed: 9)
        var t: Int64 = 0
        try roundTrip((0..<2000).map { _ in
            t += Int64.random(in: 0..<5_000_000_000, using: &random)
            let kind = Int.random(in: 0..<4, using: &random)
            return ProbeRecord(sentNs: t, targetID: 7,
                               rttNs: kind & 1 == 0 ? Int64.random(in: .min ... .max, using: &random) : nil,
                               sendError: kind & 2 == 0 ? nil : Int32.random(in: .min ... .max, using: &random))
        })
    }

    @Test func randomBlocksRoundTrip() throws {
        var random = SplitMix64(seed: 77)
        for round in 0..<200 {
            let count = Int.random(in: 0..<300, using: &random)
            let scale = Int64(1) << Int64.random(in: 0...62, using: &random)
            var sent = Int64.random(in: .min ... .max, using: &random)
            let probes = (0..<count).map { _ in
                sent = sent &+ Int64.random(in: 0...scale, using: &random)
                let roll = Int.random(in: 0..<10, using: &random)
                return ProbeRecord(
                    sentNs: sent, targetID: 7,
                    rttNs: roll < 7 ? Int64.random(in: -scale...scale, using: &random) : nil,
                    sendError: roll == 9 ? Int32.random(in: -1...200, using: &random) : nil)
            }
            try roundTrip(probes)
            _ = round
        }
    }

    @Test func damagedBytesThrowCorruptNeverCrash() throws {
        let bytes = BlockCodec.encode(Self.noisyHour(seed: 2, count: 400))
        func decode(_ data: [UInt8]) throws {
            var probes: [ProbeRecord] = []
            try data.withUnsafeBytes { try BlockCodec.decode($0, targetID: 1, into: &probes) }
        }
        // A damaged block that decodes is a failure, as is any other error.
        func expectCorrupt(_ data: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
            let error = #expect(throws: StoreError.self, "\(data.count) damaged bytes decoded", sourceLocation: sourceLocation) {
                try decode(data)
            }
            if let error { #expect(error.resultCode == .corrupt, sourceLocation: sourceLocation) }
        }
        // Every truncation fails (the streams end exactly where the bytes do).
        for length in stride(from: 0, to: bytes.count - 1, by: 7) { expectCorrupt(Array(bytes[..<length])) }
        expectCorrupt([])
        expectCorrupt([9] + bytes.dropFirst())
        // A header claiming more probes than the bytes can hold.
        var huge = bytes
        huge[1] = 0xFF
        expectCorrupt(huge)
        // Random damage: any outcome but a crash (some flips still decode).
        decodeDamaged(bytes, seed: 3, flipped: 2000, random: 500, decode)
    }

    /// Prints (never asserts) the decode speed, for docs/BENCHMARKS.md's
    /// sanity; the figure of record comes from `pingem-bench run`.
    @Test func decodeSpeed() throws {
        let bytes = BlockCodec.encode(Self.noisyHour(seed: 4))
        var probes: [ProbeRecord] = []
        probes.reserveCapacity(3600)
        let start = ContinuousClock.now
        for _ in 0..<200 {
            probes.removeAll(keepingCapacity: true)
            try bytes.withUnsafeBytes { try BlockCodec.decode($0, targetID: 1, into: &probes) }
        }
        let elapsed = ContinuousClock.now - start
        print("[block] \(bytes.count) bytes for 3600 probes; decode \(200 * 3600) probes in \(elapsed)")
    }
}
