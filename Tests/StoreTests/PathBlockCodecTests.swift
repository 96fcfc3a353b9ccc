import Foundation
import Testing
import TestSupport
@testable import Store

// The path block codec gives back every field of every path probe exactly,
// for realistic rounds and hostile inputs, and refuses damaged bytes with a
// StoreError.
@Suite struct PathBlockCodecTests {
    static func decoded(_ bytes: [UInt8], targetID: Int64) throws -> [PathProbeRecord] {
        var probes: [PathProbeRecord] = []
        try bytes.withUnsafeBytes { try PathBlockCodec.decode($0, targetID: targetID, into: &probes) }
        return probes
    }

    func roundTrip(_ probes: [PathProbeRecord], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let back = try Self.decoded(PathBlockCodec.encode(probes), targetID: probes.first?.targetID ?? 7)
        #expect(back == probes, sourceLocation: sourceLocation)
        // Byte for byte, not only String equality (canonical equivalence).
        #expect(back.map { $0.from.map { Array($0.utf8) } } == probes.map { $0.from.map { Array($0.utf8) } },
                sourceLocation: sourceLocation)
    }

    /// One hour of one target's rounds as the recorder writes them: 12 hops
    /// every 30 s, sent a few µs apart; hop 4 rate-limits (answers about
    /// half), hop 7 never answers, the routers' RTTs steady with some
    /// jitter, the target's noisier; a 3-minute outage from hop 9 on, with
    /// rounds every second; an IPv6 hop with a zone, and one ECMP hop.
    static func realisticHour(seed: UInt64, target: Int64 = 3, start: Int64 = 1_767_225_600_000_000_000) -> [PathProbeRecord] {
        var random = SplitMix64(seed: seed)
        var probes: [PathProbeRecord] = []
        var roundNs = start + 17_000_000
        while roundNs < start + 3_600_000_000_000 {
            let losing = (1_200_000_000_000..<1_380_000_000_000).contains(roundNs - start)
            var sent = roundNs
            for ttl in 1...12 {
                let toTarget = ttl == 12
                var probe = PathProbeRecord(targetID: target, roundNs: roundNs, ttl: ttl, toTarget: toTarget, sentNs: sent)
                let silent = ttl == 7 || (ttl == 4 && Bool.random(using: &random)) || (losing && ttl >= 9)
                if !silent {
                    let base = Int64(ttl) * 1_500_000
                    let jitter = Int64.random(in: 0..<(toTarget ? 3_000_000 : 300_000), using: &random)
                    probe.receivedNs = sent + base + jitter
                    probe.from = toTarget ? "203.0.113.60"
                        : ttl == 1 ? "fe80::1%eth0"
                        : ttl == 5 ? (Bool.random(using: &random) ? "198.51.100.5" : "198.51.100.6")
                        : "198.51.100.\(ttl)"
                    probe.icmpType = toTarget ? 0 : ttl == 1 ? 3 : 11
                    probe.icmpCode = 0
                    probe.answer = PathAnswer.stored(type: probe.icmpType, from: probe.from)
                }
                probes.append(probe)
                sent += 4_000 + Int64.random(in: 0..<12_000, using: &random)
            }
            roundNs += (losing ? 1_000_000_000 : 30_000_000_000) + Int64.random(in: 0..<200_000, using: &random)
        }
        return probes
    }

    @Test func realisticHourRoundTripsInAFewBytesPerProbe() throws {
        let probes = Self.realisticHour(seed: 1)
        try roundTrip(probes)
        let size = PathBlockCodec.encode(probes).count
        #expect(Double(size) / Double(probes.count) < 6, "\(size) bytes for \(probes.count) path probes")
    }

    @Test func emptyAndSingleProbes() throws {
        try roundTrip([])
        try roundTrip([PathProbeRecord(targetID: 7, roundNs: 5, ttl: 1, toTarget: true, sentNs: 5)])
        try roundTrip([PathProbeRecord(targetID: 7, roundNs: -5, ttl: 0, toTarget: false, sentNs: -9, sendError: 0,
                                       receivedNs: -20, from: "", answer: .otherError, icmpType: -1, icmpCode: -2)])
    }

    /// Every field at its extremes, each optional present or not on its own,
    /// answers that the stored type would not give, rounds out of order.
    @Test func everyFieldsExtremes() throws {
        let extremes: [Int64] = [.min, .min + 1, -1, 0, 1, .max - 1, .max]
        var probes: [PathProbeRecord] = []
        for (i, a) in extremes.enumerated() {
            for (j, b) in extremes.enumerated() {
                let flags = i * 7 + j
                probes.append(PathProbeRecord(
                    targetID: 7, roundNs: a, ttl: Int(b), toTarget: flags % 2 == 0, sentNs: b,
                    sendError: flags % 3 == 0 ? [Int32.min, -1, 0, 1, .max][flags % 5] : nil,
                    receivedNs: flags % 4 == 0 ? a : nil,
                    from: flags % 5 == 0 ? ["é", "e\u{301}", "fe80::1%eth0", "", "198.18.0.1", "\u{0}x"][flags % 6] : nil,
                    answer: flags % 6 == 0 ? nil : PathAnswer.allCases[flags % 4],
                    icmpType: flags % 7 == 0 ? nil : Int(a), icmpCode: flags % 8 == 0 ? nil : Int(b)))
            }
        }
        try roundTrip(probes)
        try roundTrip(probes.reversed())
        // A long round (the layout and fields not the usual ones) between short ones.
        let long = (0..<300).map { i in
            PathProbeRecord(targetID: 7, roundNs: 1_000, ttl: 300 - i, toTarget: i == 5, sentNs: 1_000 - Int64(i) * 1_000_000_007)
        }
        try roundTrip(Array(probes.prefix(3)) + long + Array(probes.suffix(3)))
    }

    @Test func randomBlocksRoundTrip() throws {
        var random = SplitMix64(seed: 5)
        for _ in 0..<200 {
            var probes = Self.realisticHour(seed: random.next(), start: Int64.random(in: -1_000_000_000_000...1_000_000_000_000, using: &random))
            probes = Array(probes.prefix(Int.random(in: 0...probes.count, using: &random)))
            // Damage the regularity the codec bets on, here and there.
            for _ in 0..<Int.random(in: 0...20, using: &random) where !probes.isEmpty {
                let i = Int.random(in: 0..<probes.count, using: &random)
                switch Int.random(in: 0..<6, using: &random) {
                case 0: probes[i].ttl = Int.random(in: -5...40, using: &random)
                case 1: probes[i].sendError = Int32.random(in: .min ... .max, using: &random)
                case 2: probes[i].from = probes[i].from == nil ? "10.0.0.\(i)" : nil
                case 3: probes[i].icmpCode = Int.random(in: -3...300, using: &random)
                case 4: probes[i].answer = .unreachable
                default: probes[i].receivedNs = Int64.random(in: .min ... .max, using: &random)
                }
            }
            try roundTrip(probes)
        }
    }

    @Test func damagedBytesThrowCorruptNeverCrash() throws {
        let bytes = PathBlockCodec.encode(Array(Self.realisticHour(seed: 2).prefix(400)))
        // The error a decode gives; a refused block appends nothing.
        func refusal(_ data: [UInt8]) -> StoreError? {
            var probes = [PathProbeRecord(targetID: 9, roundNs: 0, ttl: 1, toTarget: true, sentNs: 0)]
            let error = data.withUnsafeBytes { buffer in
                Result { try PathBlockCodec.decode(buffer, targetID: 1, into: &probes) }.failure
            }
            if error != nil { #expect(probes.count == 1) }
            return error
        }
        func decode(_ data: [UInt8]) throws { if let error = refusal(data) { throw error } }
        // A damaged block that decodes, or fails otherwise, is a failure.
        func expectCorrupt(_ data: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(refusal(data)?.resultCode == .corrupt, "\(data.count) damaged bytes", sourceLocation: sourceLocation)
        }
        try decode(bytes)
        // Every truncation fails (the last stream ends where the bytes do).
        for length in stride(from: 0, to: bytes.count - 1, by: 3) { expectCorrupt(Array(bytes[..<length])) }
        expectCorrupt([])
        expectCorrupt([BlockCodec.version] + bytes.dropFirst())
        // A probe block is not a path block.
        expectCorrupt(BlockCodec.encode([ProbeRecord(sentNs: 1, targetID: 1, rttNs: 2)]))
        // A header claiming more probes or rounds than the bytes can hold.
        for index in [1, 5] {
            var huge = bytes
            huge[index] = 0xFF
            expectCorrupt(huge)
        }
        // Random damage: any outcome but a crash (some flips still decode).
        decodeDamaged(bytes, seed: 3, flipped: 3000, random: 1000, randomPrefix: [PathBlockCodec.version], decode)
    }
}

extension Result where Failure == any Error {
    /// The error, as the StoreError a decode throws (nil: it decoded).
    var failure: StoreError? {
        guard case .failure(let error) = self else { return nil }
        return error as? StoreError ?? StoreError(resultCode: .misuse, message: "not a StoreError: \(error)", sql: nil)
    }
}
