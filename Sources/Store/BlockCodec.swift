// The lossless block codec: the probes of one target in one aligned UTC hour
// as one bit string, about 5.5 bytes per probe on noisy data instead of the
// 20 to 30 a plain row costs. Pure Swift; Database+Blocks stores the bytes.
//
// Invariants:
//   * Lossless for every input, not only realistic ones: every Int64 sent_ns
//     and rtt_ns and every Int32 send_error comes back bit for bit. Residuals
//     are taken with wrapping arithmetic (a bijection on Int64), and a value
//     whose Rice quotient would be long is escaped to 64 raw bits, so Int64
//     extremes, hour-long jumps and negative RTTs cost bits, never exactness.
//   * Decoding never trusts the bytes: every count is checked against the
//     header, the reader never reads past the blob (it stops at the end of
//     the bytes and throws), and a malformed blob is a StoreError with code
//     SQLITE_CORRUPT, never a crash or an endless loop.
//   * Probes are given and returned in the order given (the store keeps
//     (sent_ns, target_id) order, so sent_ns never decreases within a block,
//     but the codec does not rely on it).
//
// Layout (version 1), one MSB-first bit string after a version byte:
//   count (32 bits), first sent_ns (64), interval (64), then four streams:
//   kinds:   runs of probe kinds (bit 0: has no rtt, bit 1: has a send error),
//            each run a 2-bit kind and a Rice-coded length - 1; loss is rare
//            and comes in runs (outages), so this costs ~0.1 bit per probe.
//   sent:    sent[i] - sent[i-1] - interval, zig-zag, Rice. The interval is
//            the block's median step, so a probe on its slot costs only its
//            scheduling noise (tens of µs: ~17 bits). A gap or a restart is
//            one escaped value.
//   rtt:     for probes with an rtt, either rtt - previous rtt or rtt - block
//            median, whichever the block codes shorter (one bit says which):
//            the median wins for i.i.d. jitter, the previous value for level
//            shifts (route changes). ~23 bits at 2 ms of jitter.
//   errors:  for probes with a send error, error - previous error (errno
//            values repeat in runs), zig-zag, Rice.
// Each stream has its own Rice parameter k (6 bits), chosen per block as the
// exact minimum of the coded size over every k.

/// Codes and decodes blocks; see the file comment for the format.
public enum BlockCodec {
    static let version: UInt8 = 1
    /// A Rice quotient this long or longer is written as this many 1 bits and
    /// the value's 64 raw bits: an hour-long gap costs 88 bits, not millions.
    static let escapeQuotient = 24
    /// More than this many probes in one block is not something a recorder
    /// can write (one target, one hour, 10 ms minimum interval gives 360,000);
    /// a header that says so is corrupt. Generous for foreign writers.
    static let maximumCount = 1 << 26

    // MARK: Encoding

    /// The block for `probes` (one target's; their targetID is not stored).
    public static func encode(_ probes: [ProbeRecord]) -> [UInt8] {
        var writer = BitWriter()
        writer.write(UInt64(probes.count), bits: 32)
        let first = probes.first?.sentNs ?? 0
        let interval = medianStep(probes)
        writer.write(UInt64(bitPattern: first), bits: 64)
        writer.write(UInt64(bitPattern: interval), bits: 64)
        guard !probes.isEmpty else { return writer.finish() }

        // Kinds, as runs.
        var runKinds: [UInt64] = []
        var runLengths: [UInt64] = []
        for probe in probes {
            let kind = kindOf(probe)
            if let last = runKinds.last, last == kind {
                runLengths[runLengths.count - 1] += 1
            } else {
                runKinds.append(kind)
                runLengths.append(0)  // stored as length - 1
            }
        }
        let runK = bestK(runLengths)
        writer.write(UInt64(runK), bits: 6)
        for (kind, length) in zip(runKinds, runLengths) {
            writer.write(kind, bits: 2)
            writer.writeRice(length, k: runK)
        }

        // Send times.
        var sentResiduals: [UInt64] = []
        sentResiduals.reserveCapacity(probes.count)
        var previous = first
        for probe in probes.dropFirst() {
            sentResiduals.append(zigzag(probe.sentNs &- previous &- interval))
            previous = probe.sentNs
        }
        let sentK = bestK(sentResiduals)
        writer.write(UInt64(sentK), bits: 6)
        for value in sentResiduals { writer.writeRice(value, k: sentK) }

        // Round-trip times: the shorter of the two predictions.
        let rtts = probes.compactMap(\.rttNs)
        var byPrevious: [UInt64] = []
        byPrevious.reserveCapacity(rtts.count)
        var previousRTT: Int64 = 0
        for rtt in rtts {
            byPrevious.append(zigzag(rtt &- previousRTT))
            previousRTT = rtt
        }
        let median = rtts.isEmpty ? 0 : rtts.sorted()[rtts.count / 2]
        let byMedian = rtts.map { zigzag($0 &- median) }
        let previousK = bestK(byPrevious), medianK = bestK(byMedian)
        let useMedian = riceBits(byMedian, k: medianK) + 64 < riceBits(byPrevious, k: previousK)
        writer.write(useMedian ? 1 : 0, bits: 1)
        if useMedian {
            writer.write(UInt64(bitPattern: median), bits: 64)
            writer.write(UInt64(medianK), bits: 6)
            for value in byMedian { writer.writeRice(value, k: medianK) }
        } else {
            writer.write(UInt64(previousK), bits: 6)
            for value in byPrevious { writer.writeRice(value, k: previousK) }
        }

        // Send errors.
        var errorResiduals: [UInt64] = []
        var previousError: Int64 = 0
        for probe in probes {
            guard let error = probe.sendError else { continue }
            errorResiduals.append(zigzag(Int64(error) &- previousError))
            previousError = Int64(error)
        }
        let errorK = bestK(errorResiduals)
        writer.write(UInt64(errorK), bits: 6)
        for value in errorResiduals { writer.writeRice(value, k: errorK) }
        return writer.finish()
    }

    /// Bit 0: no rtt; bit 1: a send error.
    @inline(__always)
    static func kindOf(_ probe: ProbeRecord) -> UInt64 {
        (probe.rttNs == nil ? 1 : 0) | (probe.sendError == nil ? 0 : 2)
    }

    /// The median of the steps between consecutive send times: the probe
    /// interval when the block is regular, and never hurt by a few gaps.
    static func medianStep(_ probes: [ProbeRecord]) -> Int64 {
        guard probes.count >= 2 else { return 0 }
        var steps: [Int64] = []
        steps.reserveCapacity(probes.count - 1)
        for i in 1..<probes.count { steps.append(probes[i].sentNs &- probes[i - 1].sentNs) }
        steps.sort()
        return steps[steps.count / 2]
    }

    @inline(__always)
    static func zigzag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    @inline(__always)
    static func unzigzag(_ value: UInt64) -> Int64 {
        Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
    }

    /// Bits the values take with Rice parameter k (escapes included).
    static func riceBits(_ values: [UInt64], k: Int) -> Int {
        var bits = 0
        for value in values {
            let quotient = value >> UInt64(k)
            bits += quotient < UInt64(escapeQuotient) ? Int(quotient) + 1 + k : escapeQuotient + 64
        }
        return bits
    }

    /// The k in 0...63 that codes `values` shortest. Exact, not the usual
    /// log2(mean) estimate: a block is coded once and read many times.
    static func bestK(_ values: [UInt64]) -> Int {
        guard !values.isEmpty else { return 0 }
        var best = 0, bestBits = Int.max
        for k in 0...63 {
            let bits = riceBits(values, k: k)
            if bits < bestBits { best = k; bestBits = bits }
            // Past the optimum the size only grows by one bit per value per k.
            if bits > bestBits && k > best + 2 { break }
        }
        return best
    }

    // MARK: Decoding

    /// Appends the block's probes, all with `targetID`, to `probes`.
    /// Throws StoreError (corrupt) for bytes that are not a valid block.
    public static func decode(_ bytes: UnsafeRawBufferPointer, targetID: Int64, into probes: inout [ProbeRecord]) throws {
        guard let versionByte = bytes.first, versionByte == version else {
            throw corrupt("unknown block version")
        }
        try BitReader.withReader(bytes: UnsafeRawBufferPointer(rebasing: bytes[1...])) { reader in
            let count = Int(try reader.read(32))
            let first = Int64(bitPattern: try reader.read(64))
            let interval = Int64(bitPattern: try reader.read(64))
            // Every probe after the first takes at least one bit of the
            // send stream: a count the bytes cannot hold is corrupt (and
            // would otherwise make us allocate for it).
            guard count <= maximumCount, count <= reader.limit - reader.position + 1 else {
                throw corrupt("block says it holds \(count) probes")
            }
            guard count > 0 else { return }
            let start = probes.count
            probes.reserveCapacity(start + count)

            // Kinds: fill the probes with their kind first, values later.
            let runK = Int(try reader.read(6))
            var filled = 0
            var errorCount = 0
            while filled < count {
                let kind = try reader.read(2)
                let length = try reader.readRice(k: runK)
                guard length < UInt64(count - filled) else { throw corrupt("kind runs exceed the block") }
                let n = Int(length) + 1
                // Placeholders: rtt 0 marks "has an rtt", the error 0 "has an error".
                let probe = ProbeRecord(sentNs: 0, targetID: targetID,
                                        rttNs: kind & 1 == 0 ? 0 : nil,
                                        sendError: kind & 2 == 0 ? nil : 0)
                for _ in 0..<n { probes.append(probe) }
                if kind & 2 != 0 { errorCount += n }
                filled += n
            }

            try probes.withUnsafeMutableBufferPointer { all in
                let block = UnsafeMutableBufferPointer(rebasing: all[start...])
                let sentK = Int(try reader.read(6))
                var sent = first
                block[0].sentNs = sent
                for i in 1..<count {
                    sent = sent &+ interval &+ unzigzag(try reader.readRice(k: sentK))
                    block[i].sentNs = sent
                }

                let useMedian = try reader.read(1) == 1
                var base: Int64 = useMedian ? Int64(bitPattern: try reader.read(64)) : 0
                let rttK = Int(try reader.read(6))
                for i in 0..<count where block[i].rttNs != nil {
                    let value = base &+ unzigzag(try reader.readRice(k: rttK))
                    block[i].rttNs = value
                    if !useMedian { base = value }
                }

                let errorK = Int(try reader.read(6))
                var previousError: Int64 = 0
                if errorCount > 0 {
                    for i in 0..<count where block[i].sendError != nil {
                        let value = previousError &+ unzigzag(try reader.readRice(k: errorK))
                        guard let error = Int32(exactly: value) else { throw corrupt("send error out of range") }
                        block[i].sendError = error
                        previousError = value
                    }
                }
            }
        }
    }

    static func corrupt(_ why: String) -> StoreError {
        StoreError(resultCode: .corrupt, message: "damaged probe block: \(why)", sql: nil)
    }
}

// MARK: Bits

/// MSB-first bit string into bytes.
struct BitWriter {
    private(set) var bytes: [UInt8]
    private var accumulator: UInt64 = 0  // pending bits, right-aligned
    private var pending = 0              // how many, < 8 after each write

    /// A bit string after its format's version byte (BlockCodec's, or
    /// PathBlockCodec's, which shares these bits).
    init(version: UInt8 = BlockCodec.version) { bytes = [version] }

    /// Writes the low `bits` bits of `value` (0...64).
    mutating func write(_ value: UInt64, bits: Int) {
        if bits > 32 {
            write(value >> 32, bits: bits - 32)
            write(value & 0xFFFF_FFFF, bits: 32)
            return
        }
        guard bits > 0 else { return }
        let masked = value & ((1 << UInt64(bits)) - 1)
        accumulator = (accumulator << UInt64(bits)) | masked
        pending += bits
        while pending >= 8 {
            pending -= 8
            bytes.append(UInt8(truncatingIfNeeded: accumulator >> UInt64(pending)))
        }
        accumulator &= (1 << UInt64(pending)) - 1
    }

    /// Rice code with parameter k: the quotient in unary (1s ended by a 0),
    /// then the k low bits; a long quotient escapes to 64 raw bits.
    mutating func writeRice(_ value: UInt64, k: Int) {
        let quotient = value >> UInt64(k)
        if quotient < UInt64(BlockCodec.escapeQuotient) {
            let q = Int(quotient)
            // q ones and a zero, at most 24 bits.
            write(((1 << UInt64(q)) - 1) << 1, bits: q + 1)
            write(value, bits: k)
        } else {
            write((1 << UInt64(BlockCodec.escapeQuotient)) - 1, bits: BlockCodec.escapeQuotient)
            write(value, bits: 64)
        }
    }

    mutating func finish() -> [UInt8] {
        if pending > 0 { bytes.append(UInt8(truncatingIfNeeded: accumulator << UInt64(8 - pending))) }
        pending = 0
        accumulator = 0
        return bytes
    }
}

/// Reads a bit string a 64-bit word at a time from a copy padded with zero
/// bytes, so a read near the end never leaves the buffer; a read that goes
/// past the real end throws instead of returning padding.
struct BitReader {
    let base: UnsafeRawPointer
    let limit: Int      // bits of real data
    var position = 0    // next bit to read

    /// Padding: a read looks at 8 bytes from the current byte, and the limit
    /// check comes after the read, so one read may overrun by its length.
    static let paddingBytes = 24

    static func withReader<T>(bytes: UnsafeRawBufferPointer, _ body: (inout BitReader) throws -> T) throws -> T {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count + paddingBytes, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        if bytes.count > 0 { buffer.copyMemory(from: bytes) }
        var reader = BitReader(base: UnsafeRawPointer(buffer.baseAddress!), limit: bytes.count * 8)
        return try body(&reader)
    }

    /// The next 64 bits, of which at least 57 are real or padding.
    @inline(__always)
    func peek() -> UInt64 {
        let word = base.loadUnaligned(fromByteOffset: position >> 3, as: UInt64.self).bigEndian
        return word << UInt64(position & 7)
    }

    @inline(__always)
    mutating func check() throws {
        if position > limit { throw BlockCodec.corrupt("truncated") }
    }

    /// The next `bits` (0...64) bits as an unsigned integer.
    @inline(__always)
    mutating func read(_ bits: Int) throws -> UInt64 {
        if bits > 32 {
            let high = try read(bits - 32)
            return (high << 32) | (try read(32))
        }
        guard bits > 0 else { return 0 }
        let value = peek() >> UInt64(64 - bits)
        position += bits
        try check()
        return value
    }

    @inline(__always)
    mutating func readRice(k: Int) throws -> UInt64 {
        let ones = (~peek()).leadingZeroBitCount
        if ones >= BlockCodec.escapeQuotient {
            position += BlockCodec.escapeQuotient
            return try read(64)
        }
        position += ones + 1
        if k == 0 {
            try check()
            return UInt64(ones)
        }
        return (UInt64(ones) << UInt64(k)) | (try read(k))
    }
}
