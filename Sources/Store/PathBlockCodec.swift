// The lossless path block codec: one target's path probes of one aligned UTC
// hour as one bit string (Database+PathBlocks stores the bytes). It reuses
// BlockCodec's bit writer and reader, Rice codes, zig-zag and escape rule.
//
// Invariants:
//   * Lossless for every input, not only realistic ones: every field of
//     PathProbeRecord but targetID (the block row's) comes back exactly:
//     Int64 times and TTLs, Int32 errors, Int type and code, any source text
//     byte for byte (a zone, non-ASCII: the dictionary is keyed by the UTF-8
//     bytes, not by String equality, which is canonical equivalence), and
//     every optional nil or not, independently of the others. Residuals use
//     wrapping arithmetic and Rice escapes, as in BlockCodec; the answer is
//     stored only when some probe's answer is not the one the stored row
//     would give (PathAnswer.stored(type:from:)).
//   * Decoding never trusts the bytes: counts are checked against the header
//     and the bits left, and a malformed blob is a StoreError with code
//     SQLITE_CORRUPT, never a crash or an endless loop.
//   * Probes are returned in the order given. A "round" here is a run of
//     consecutive probes with one round_ns (the store gives them in (round,
//     ttl) order, so that is the recorder's round).
//
// What it exploits (a round is one probe per TTL 1..distance, sent back to
// back): a round's layout (TTL i + 1 at position i, the target's probe last)
// and which fields it has are "as last round" (one bit each); round starts
// step by the path interval (or the --interval while losing: coded from the
// previous step when that is shorter); a probe's send time is its
// predecessor's plus a few µs; a hop answers from the address and with the
// type and code it answered with last round (one bit per round when all do);
// a router's RTT is coded from its own RTT last round.
//
// Layout (version byte 0x81), MSB first:
//   count (32), rounds (32), first round_ns (64), round interval (64),
//   dictionary: entries (Rice k 4), each its byte length (Rice k 4) and bytes,
//   1 bit: every answer is the stored one,
//   structure, per round: size - last size (zig-zag, Rice k 0); 1 bit "the
//     usual layout", else per probe TTL - (previous TTL + 1) (zig-zag, Rice k
//     0) and the to-target bit; 1 bit "fields as last round at each
//     position", else per probe 1 bit "as last", else the 5-bit field mask,
//   symbols, per round: 1 bit "source, type and code as last round", else
//     per field present 1 bit "as last", else the dictionary index (fixed
//     width) or the value (zig-zag, Rice k 3); then the answers if stored
//     (3 bits each),
//   streams, each with its Rice parameter (6 bits, the exact best): round
//     steps (1 bit: from the interval or from the previous step), first send
//     - round_ns, send - previous send, RTT - the position's last RTT, send
//     error - previous error.

/// Codes and decodes path blocks; see the file comment for the format.
public enum PathBlockCodec {
    static let version: UInt8 = 0x81

    /// Which optional fields a probe has: one bit each.
    struct Fields: OptionSet, Hashable {
        let rawValue: UInt64
        static let sendError = Fields(rawValue: 1)
        static let received = Fields(rawValue: 2)
        static let from = Fields(rawValue: 4)
        static let type = Fields(rawValue: 8)
        static let code = Fields(rawValue: 16)
        /// An answered probe: what "as last round" starts from.
        static let answered: Fields = [.received, .from, .type, .code]

        init(rawValue: UInt64) { self.rawValue = rawValue }
        init(_ probe: PathProbeRecord) {
            var fields: Fields = []
            if probe.sendError != nil { fields.insert(.sendError) }
            if probe.receivedNs != nil { fields.insert(.received) }
            if probe.from != nil { fields.insert(.from) }
            if probe.icmpType != nil { fields.insert(.type) }
            if probe.icmpCode != nil { fields.insert(.code) }
            self = fields
        }
    }

    static func corrupt(_ why: String) -> StoreError {
        StoreError(resultCode: .corrupt, message: "damaged path block: \(why)", sql: nil)
    }

    /// The runs of equal round_ns: (first index, size).
    static func rounds(_ probes: [PathProbeRecord]) -> [Range<Int>] {
        var rounds: [Range<Int>] = []
        guard !probes.isEmpty else { return rounds }
        var start = 0
        for i in 1...probes.count where i == probes.count || probes[i].roundNs != probes[start].roundNs {
            if i > start { rounds.append(start..<i) }
            start = i
        }
        return rounds
    }

    /// The bits a dictionary index takes for `count` entries.
    static func indexBits(_ count: Int) -> Int {
        count <= 1 ? 0 : Int.bitWidth - (count - 1).leadingZeroBitCount
    }

    /// The slot of `position` in a per-position history, grown on demand.
    @inline(__always)
    static func grow<T>(_ array: inout [T], to position: Int, with value: T) {
        while array.count <= position { array.append(value) }
    }
}

extension PathAnswer {
    /// The answer a stored row stands for: from its ICMP type, in the family
    /// of the address that answered.
    public static func stored(type: Int?, from: String?) -> PathAnswer? {
        type.map { PathAnswer(icmpType: $0, isIPv6: from?.contains(":") ?? false) }
    }

    /// 0 for nil, then 1... in CaseIterable order (3 bits).
    var code: UInt64 { UInt64(PathAnswer.allCases.firstIndex(of: self)! + 1) }
}

// MARK: Encoding

extension PathBlockCodec {
    /// The block for `probes` (one target's; their targetID is not stored).
    public static func encode(_ probes: [PathProbeRecord]) -> [UInt8] {
        var writer = BitWriter(version: version)
        let rounds = rounds(probes)
        writer.write(UInt64(probes.count), bits: 32)
        writer.write(UInt64(rounds.count), bits: 32)
        let starts = rounds.map { probes[$0.lowerBound].roundNs }
        let interval = medianStep(starts)
        writer.write(UInt64(bitPattern: starts.first ?? 0), bits: 64)
        writer.write(UInt64(bitPattern: interval), bits: 64)
        guard !probes.isEmpty else { return writer.finish() }

        var dictionary: [[UInt8]] = []
        var indexOf: [[UInt8]: Int] = [:]
        for probe in probes {
            guard let from = probe.from else { continue }
            let bytes = Array(from.utf8)
            if indexOf[bytes] == nil { indexOf[bytes] = dictionary.count; dictionary.append(bytes) }
        }
        writer.writeRice(UInt64(dictionary.count), k: 4)
        for entry in dictionary {
            writer.writeRice(UInt64(entry.count), k: 4)
            for byte in entry { writer.write(UInt64(byte), bits: 8) }
        }
        let storedAnswers = probes.allSatisfy { $0.answer == PathAnswer.stored(type: $0.icmpType, from: $0.from) }
        writer.write(storedAnswers ? 1 : 0, bits: 1)

        writeStructure(probes, rounds, into: &writer)
        writeSymbols(probes, rounds, sourceIndex: { indexOf[Array($0.utf8)]! },
                     indexBits: indexBits(dictionary.count), into: &writer)
        if !storedAnswers {
            for probe in probes { writer.write(probe.answer?.code ?? 0, bits: 3) }
        }
        writeStreams(probes, rounds, starts: starts, interval: interval, into: &writer)
        return writer.finish()
    }

    /// The median step between round starts (0 with fewer than two).
    static func medianStep(_ starts: [Int64]) -> Int64 {
        guard starts.count >= 2 else { return 0 }
        var steps = (1..<starts.count).map { starts[$0] &- starts[$0 - 1] }
        steps.sort()
        return steps[steps.count / 2]
    }

    /// Per round: its size, its layout and which fields its probes have.
    static func writeStructure(_ probes: [PathProbeRecord], _ rounds: [Range<Int>], into writer: inout BitWriter) {
        var lastSize = 0
        var lastFields: [Fields] = []
        for round in rounds {
            writer.writeRice(BlockCodec.zigzag(Int64(round.count) &- Int64(lastSize)), k: 0)
            lastSize = round.count
            let usual = round.allSatisfy { i in
                probes[i].ttl == i - round.lowerBound + 1 && probes[i].toTarget == (i == round.upperBound - 1)
            }
            writer.write(usual ? 1 : 0, bits: 1)
            if !usual {
                var previousTTL: Int64 = 0
                for i in round {
                    writer.writeRice(BlockCodec.zigzag(Int64(probes[i].ttl) &- (previousTTL &+ 1)), k: 0)
                    writer.write(probes[i].toTarget ? 1 : 0, bits: 1)
                    previousTTL = Int64(probes[i].ttl)
                }
            }
            grow(&lastFields, to: round.count - 1, with: .answered)
            let asLast = round.allSatisfy { Fields(probes[$0]) == lastFields[$0 - round.lowerBound] }
            writer.write(asLast ? 1 : 0, bits: 1)
            for i in round {
                let fields = Fields(probes[i]), position = i - round.lowerBound
                if !asLast {
                    let same = fields == lastFields[position]
                    writer.write(same ? 1 : 0, bits: 1)
                    if !same { writer.write(fields.rawValue, bits: 5) }
                }
                lastFields[position] = fields
            }
        }
    }

    /// Per round: the sources, types and codes, each "as last round at this
    /// position" or given.
    static func writeSymbols(_ probes: [PathProbeRecord], _ rounds: [Range<Int>], sourceIndex: (String) -> Int,
                             indexBits: Int, into writer: inout BitWriter) {
        var lastSource: [Int?] = [], lastType: [Int?] = [], lastCode: [Int?] = []
        for round in rounds {
            grow(&lastSource, to: round.count - 1, with: nil)
            grow(&lastType, to: round.count - 1, with: nil)
            grow(&lastCode, to: round.count - 1, with: nil)
            let sources = round.map { probes[$0].from.map(sourceIndex) }
            let asLast = round.allSatisfy { i in
                let p = i - round.lowerBound, probe = probes[i]
                return (sources[p] == nil || sources[p] == lastSource[p])
                    && (probe.icmpType == nil || probe.icmpType == lastType[p])
                    && (probe.icmpCode == nil || probe.icmpCode == lastCode[p])
            }
            writer.write(asLast ? 1 : 0, bits: 1)
            for i in round {
                let p = i - round.lowerBound, probe = probes[i]
                if !asLast {
                    if let source = sources[p] {
                        writer.write(source == lastSource[p] ? 1 : 0, bits: 1)
                        if source != lastSource[p] { writer.write(UInt64(source), bits: indexBits) }
                    }
                    for (value, last) in [(probe.icmpType, lastType[p]), (probe.icmpCode, lastCode[p])] {
                        guard let value else { continue }
                        writer.write(value == last ? 1 : 0, bits: 1)
                        if value != last { writer.writeRice(BlockCodec.zigzag(Int64(value)), k: 3) }
                    }
                }
                if let source = sources[p] { lastSource[p] = source }
                if let type = probe.icmpType { lastType[p] = type }
                if let code = probe.icmpCode { lastCode[p] = code }
            }
        }
    }

    /// The numeric streams, each with its best Rice parameter.
    static func writeStreams(_ probes: [PathProbeRecord], _ rounds: [Range<Int>], starts: [Int64], interval: Int64,
                             into writer: inout BitWriter) {
        var byInterval: [UInt64] = [], byPrevious: [UInt64] = []
        var previousStep = interval
        for r in starts.indices.dropFirst() {
            let step = starts[r] &- starts[r - 1]
            byInterval.append(BlockCodec.zigzag(step &- interval))
            byPrevious.append(BlockCodec.zigzag(step &- previousStep))
            previousStep = step
        }
        let intervalK = BlockCodec.bestK(byInterval), previousK = BlockCodec.bestK(byPrevious)
        let fromPrevious = BlockCodec.riceBits(byPrevious, k: previousK) < BlockCodec.riceBits(byInterval, k: intervalK)
        writer.write(fromPrevious ? 1 : 0, bits: 1)
        writeStream(fromPrevious ? byPrevious : byInterval, into: &writer)

        var leads: [UInt64] = [], steps: [UInt64] = [], rtts: [UInt64] = [], errors: [UInt64] = []
        var lastRTT: [Int64?] = []
        var anyRTT: Int64 = 0, previousError: Int64 = 0
        for round in rounds {
            grow(&lastRTT, to: round.count - 1, with: nil)
            for i in round {
                let probe = probes[i], p = i - round.lowerBound
                if i == round.lowerBound {
                    leads.append(BlockCodec.zigzag(probe.sentNs &- probe.roundNs))
                } else {
                    steps.append(BlockCodec.zigzag(probe.sentNs &- probes[i - 1].sentNs))
                }
                if let received = probe.receivedNs {
                    let rtt = received &- probe.sentNs
                    rtts.append(BlockCodec.zigzag(rtt &- (lastRTT[p] ?? anyRTT)))
                    lastRTT[p] = rtt
                    anyRTT = rtt
                }
                if let error = probe.sendError {
                    errors.append(BlockCodec.zigzag(Int64(error) &- previousError))
                    previousError = Int64(error)
                }
            }
        }
        for stream in [leads, steps, rtts, errors] { writeStream(stream, into: &writer) }
    }

    static func writeStream(_ values: [UInt64], into writer: inout BitWriter) {
        let k = BlockCodec.bestK(values)
        writer.write(UInt64(k), bits: 6)
        for value in values { writer.writeRice(value, k: k) }
    }
}

// MARK: Decoding

extension PathBlockCodec {
    /// Appends the block's probes, all with `targetID`, to `probes`.
    /// Throws StoreError (corrupt) for bytes that are not a valid path block.
    public static func decode(_ bytes: UnsafeRawBufferPointer, targetID: Int64, into probes: inout [PathProbeRecord]) throws {
        guard let versionByte = bytes.first, versionByte == version else {
            throw corrupt("unknown path block version")
        }
        let start = probes.count
        do {
            try BitReader.withReader(bytes: UnsafeRawBufferPointer(rebasing: bytes[1...])) { reader in
                let count = Int(try reader.read(32)), roundCount = Int(try reader.read(32))
                let first = Int64(bitPattern: try reader.read(64)), interval = Int64(bitPattern: try reader.read(64))
                // Every probe takes at least one bit of the send streams and
                // every round three of the structure: a header that says more
                // than the bytes hold is corrupt (and would make us allocate).
                let bitsLeft = reader.limit - reader.position
                guard count <= BlockCodec.maximumCount, count <= bitsLeft, roundCount <= count,
                      roundCount <= bitsLeft / 3, (count == 0) == (roundCount == 0) else {
                    throw corrupt("block says it holds \(count) probes in \(roundCount) rounds")
                }
                guard count > 0 else { return }
                let dictionary = try readDictionary(&reader, count: count)
                let storedAnswers = try reader.read(1) == 1
                let rounds = try readStructure(&reader, count: count, roundCount: roundCount, targetID: targetID,
                                               into: &probes)
                try readSymbols(&reader, dictionary: dictionary, rounds: rounds, base: start, into: &probes)
                for i in start..<probes.count {
                    if storedAnswers {
                        probes[i].answer = PathAnswer.stored(type: probes[i].icmpType, from: probes[i].from)
                    } else {
                        let code = Int(try reader.read(3))
                        guard code <= PathAnswer.allCases.count else { throw corrupt("unknown answer") }
                        probes[i].answer = code == 0 ? nil : PathAnswer.allCases[code - 1]
                    }
                }
                try readStreams(&reader, rounds: rounds, base: start, first: first, interval: interval, into: &probes)
            }
        } catch {
            probes.removeSubrange(start...)
            throw error
        }
    }

    static func readDictionary(_ reader: inout BitReader, count: Int) throws -> [String] {
        let entries = try reader.readRice(k: 4)
        guard entries <= UInt64(count) else { throw corrupt("more sources than probes") }
        var dictionary: [String] = []
        for _ in 0..<Int(entries) {
            let length = try reader.readRice(k: 4)
            guard length <= UInt64((reader.limit - reader.position) / 8) else { throw corrupt("source past the end") }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(Int(length))
            for _ in 0..<Int(length) { bytes.append(UInt8(try reader.read(8))) }
            dictionary.append(String(decoding: bytes, as: UTF8.self))
        }
        return dictionary
    }

    /// Appends the probes with their layout and placeholders for the fields
    /// they have; returns the rounds, as offsets from the first appended.
    static func readStructure(_ reader: inout BitReader, count: Int, roundCount: Int, targetID: Int64,
                              into probes: inout [PathProbeRecord]) throws -> [Range<Int>] {
        var rounds: [Range<Int>] = []
        var filled = 0, lastSize: Int64 = 0
        var lastFields: [Fields] = []
        for _ in 0..<roundCount {
            let size = lastSize &+ BlockCodec.unzigzag(try reader.readRice(k: 0))
            guard size >= 1, size <= Int64(count - filled) else { throw corrupt("rounds exceed the block") }
            lastSize = size
            let round = filled..<(filled + Int(size))
            let usual = try reader.read(1) == 1
            var previousTTL: Int64 = 0
            var layout: [(ttl: Int, toTarget: Bool)] = []
            for p in 0..<round.count {
                if usual {
                    layout.append((p + 1, p == round.count - 1))
                } else {
                    let ttl = (previousTTL &+ 1) &+ BlockCodec.unzigzag(try reader.readRice(k: 0))
                    layout.append((Int(ttl), try reader.read(1) == 1))
                    previousTTL = ttl
                }
            }
            grow(&lastFields, to: round.count - 1, with: .answered)
            let asLast = try reader.read(1) == 1
            for p in 0..<round.count {
                if try !asLast && reader.read(1) == 0 { lastFields[p] = Fields(rawValue: try reader.read(5)) }
                let fields = lastFields[p]
                probes.append(PathProbeRecord(
                    targetID: targetID, roundNs: 0, ttl: layout[p].ttl, toTarget: layout[p].toTarget, sentNs: 0,
                    sendError: fields.contains(.sendError) ? 0 : nil, receivedNs: fields.contains(.received) ? 0 : nil,
                    from: fields.contains(.from) ? "" : nil, icmpType: fields.contains(.type) ? 0 : nil,
                    icmpCode: fields.contains(.code) ? 0 : nil))
            }
            rounds.append(round)
            filled += round.count
        }
        guard filled == count else { throw corrupt("rounds fall short of the block") }
        return rounds
    }

    static func readSymbols(_ reader: inout BitReader, dictionary: [String], rounds: [Range<Int>], base: Int,
                            into probes: inout [PathProbeRecord]) throws {
        let bits = indexBits(dictionary.count)
        var lastSource: [Int?] = [], lastType: [Int?] = [], lastCode: [Int?] = []
        func value(_ asLast: Bool, _ last: Int?) throws -> Int {
            if try asLast || reader.read(1) == 1 {
                guard let last else { throw corrupt("a value as last round, with none before") }
                return last
            }
            return Int(BlockCodec.unzigzag(try reader.readRice(k: 3)))
        }
        for round in rounds {
            grow(&lastSource, to: round.count - 1, with: nil)
            grow(&lastType, to: round.count - 1, with: nil)
            grow(&lastCode, to: round.count - 1, with: nil)
            let asLast = try reader.read(1) == 1
            for i in round {
                let p = i - round.lowerBound, at = base + i
                if probes[at].from != nil {
                    var source = lastSource[p]
                    if try !asLast && reader.read(1) == 0 { source = Int(try reader.read(bits)) }
                    guard let source, source < dictionary.count else { throw corrupt("source not in the dictionary") }
                    probes[at].from = dictionary[source]
                    lastSource[p] = source
                }
                if probes[at].icmpType != nil {
                    lastType[p] = try value(asLast, lastType[p])
                    probes[at].icmpType = lastType[p]
                }
                if probes[at].icmpCode != nil {
                    lastCode[p] = try value(asLast, lastCode[p])
                    probes[at].icmpCode = lastCode[p]
                }
            }
        }
    }

    static func readStreams(_ reader: inout BitReader, rounds: [Range<Int>], base: Int, first: Int64, interval: Int64,
                            into probes: inout [PathProbeRecord]) throws {
        let fromPrevious = try reader.read(1) == 1
        var k = Int(try reader.read(6))
        var roundNs = first, previousStep = interval
        for (r, round) in rounds.enumerated() {
            if r > 0 {
                let step = (fromPrevious ? previousStep : interval) &+ BlockCodec.unzigzag(try reader.readRice(k: k))
                roundNs = roundNs &+ step
                previousStep = step
            }
            for i in round { probes[base + i].roundNs = roundNs }
        }
        k = Int(try reader.read(6))
        for round in rounds {
            let at = base + round.lowerBound
            probes[at].sentNs = probes[at].roundNs &+ BlockCodec.unzigzag(try reader.readRice(k: k))
        }
        k = Int(try reader.read(6))
        for round in rounds {
            for i in round.dropFirst() {
                probes[base + i].sentNs = probes[base + i - 1].sentNs &+ BlockCodec.unzigzag(try reader.readRice(k: k))
            }
        }
        k = Int(try reader.read(6))
        var lastRTT: [Int64?] = [], anyRTT: Int64 = 0
        for round in rounds {
            grow(&lastRTT, to: round.count - 1, with: nil)
            for i in round where probes[base + i].receivedNs != nil {
                let p = i - round.lowerBound
                let rtt = (lastRTT[p] ?? anyRTT) &+ BlockCodec.unzigzag(try reader.readRice(k: k))
                probes[base + i].receivedNs = probes[base + i].sentNs &+ rtt
                lastRTT[p] = rtt
                anyRTT = rtt
            }
        }
        k = Int(try reader.read(6))
        var previousError: Int64 = 0
        for i in base..<probes.count where probes[i].sendError != nil {
            let value = previousError &+ BlockCodec.unzigzag(try reader.readRice(k: k))
            guard let error = Int32(exactly: value) else { throw corrupt("send error out of range") }
            probes[i].sendError = error
            previousError = value
        }
    }
}
