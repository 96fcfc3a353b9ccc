// Round-trip times of received probes and the figures a report gives of
// them, two ways:
//   * exactly, from every value (exactRTTFigures): the raw report's way;
//   * mergeably, from sums that add up across hours (RTTAccumulator: min,
//     max, exact integer sum and jitter, Welford's M2 merged with Chan's
//     formula; RTTHistogram for percentiles): the hourly summaries' way.
// Percentiles are nearest rank: the value at 1-based rank ceil(p/100 * n),
// always a measured value (from the histogram: the middle of its bucket).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The percentiles a report gives.
public let reportedPercentiles = [50, 90, 99]

/// The 0-based index of the nearest-rank `percent` percentile among `count`
/// sorted values.
@inlinable
public func nearestRankIndex(_ percent: Int, count: Int) -> Int { max(1, (percent * count + 99) / 100) - 1 }

/// lost / (sent - unknown) * 100; nil when nothing could be judged.
@inlinable
public func lossPercent(lost: Int, sent: Int, unknown: Int) -> Double? {
    let judged = sent - unknown
    return judged > 0 ? Double(lost) / Double(judged) * 100 : nil
}

/// RTT figures in nanoseconds; stddev is the population's, jitter the mean
/// |r_i - r_(i-1)| over consecutive received probes (RFC 3550 A.8 without
/// smoothing; nil below two values).
public struct RTTFigures: Sendable, Equatable {
    public var min: Double, avg: Double, p50: Double, p90: Double, p99: Double, max: Double
    public var stddev: Double
    public var jitter: Double?
}

// MARK: - Exact

/// The exact figures of a period's RTTs, given in time order (jitter needs
/// it); nil without values. `values` is reordered: selected, not sorted, as
/// three quickselects are O(n) and sorting every 5-minute epoch was a tenth
/// of a day's report (docs/BENCHMARKS.md). A plain array, not a type around
/// one: appending to a local array per probe is what the report's hot loop
/// can afford.
public func exactRTTFigures(_ values: inout [Nanoseconds]) -> RTTFigures? {
    guard let firstValue = values.first else { return nil }
    let n = values.count
    // One pass for the sum, min, max and jitter (while in time order), a
    // second for the squared deviations from the mean (exact to rounding).
    var sum = 0.0, jitterSum = 0.0, low = firstValue, high = firstValue, previous = firstValue
    for v in values {
        sum += Double(v)
        jitterSum += Double(abs(v - previous))
        previous = v
        low = min(low, v); high = max(high, v)
    }
    let mean = sum / Double(n)
    var squares = 0.0
    for v in values { squares += (Double(v) - mean) * (Double(v) - mean) }
    let picked = selectRanks(&values, reportedPercentiles.map { nearestRankIndex($0, count: n) })
    return RTTFigures(
        min: Double(low), avg: mean, p50: Double(picked[0]), p90: Double(picked[1]), p99: Double(picked[2]),
        max: Double(high), stddev: (squares / Double(n)).squareRoot(), jitter: n >= 2 ? jitterSum / Double(n - 1) : nil)
}

/// The values at 0-based `ranks` (ascending) of `values` as if sorted, by
/// quickselect: each search continues right of the previous rank.
public func selectRanks(_ values: inout [Nanoseconds], _ ranks: [Int]) -> [Nanoseconds] {
    var result: [Nanoseconds] = []
    var low = 0
    for k in ranks {
        var lo = low, hi = values.count - 1
        while lo < hi {
            // Median of three as pivot, then Hoare partition.
            let mid = lo + (hi - lo) / 2
            let a = values[lo], b = values[mid], c = values[hi]
            let pivot = max(min(a, b), min(max(a, b), c))
            var i = lo, j = hi
            while i <= j {
                while values[i] < pivot { i += 1 }
                while values[j] > pivot { j -= 1 }
                if i <= j { values.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { break }
        }
        result.append(values[k])
        low = k
    }
    return result
}

// MARK: - Mergeable

/// Sums of RTTs that add up across periods joined in time order. Counts,
/// min, max, sum and jitter are exact integers (ns); M2 (the sum of squared
/// deviations from the mean) is a Double, exact enough for nanosecond RTTs.
public struct RTTAccumulator: Sendable, Hashable {
    public var count = 0
    public var min: Nanoseconds = 0
    public var max: Nanoseconds = 0
    public var sum: Int64 = 0
    public var mean = 0.0
    public var m2 = 0.0
    /// The first and the last RTT, to join jitter across periods.
    public var first: Nanoseconds = 0
    public var last: Nanoseconds = 0
    /// Sum of |r_i - r_(i-1)| over consecutive values (count - 1 pairs).
    public var jitterSum: Int64 = 0

    public init() {}

    /// The next RTT in time order (Welford's update of mean and M2).
    @inlinable
    public mutating func add(_ rttNs: Nanoseconds) {
        count += 1
        if count == 1 {
            min = rttNs; max = rttNs; first = rttNs
        } else {
            min = Swift.min(min, rttNs); max = Swift.max(max, rttNs)
            jitterSum += abs(rttNs - last)
        }
        last = rttNs
        sum += rttNs
        let delta = Double(rttNs) - mean
        mean += delta / Double(count)
        m2 += delta * (Double(rttNs) - mean)
    }

    /// The RTTs of a later period (Chan et al.'s pairwise update of mean and M2).
    public mutating func append(_ later: RTTAccumulator) {
        guard later.count > 0 else { return }
        if count == 0 {
            min = later.min; max = later.max
        } else {
            min = Swift.min(min, later.min); max = Swift.max(max, later.max)
            jitterSum += abs(later.first - last)
        }
        jitterSum += later.jitterSum
        if count == 0 { first = later.first }
        last = later.last
        sum += later.sum
        let total = count + later.count
        let delta = later.mean - mean
        m2 += later.m2 + delta * delta * Double(count) * Double(later.count) / Double(total)
        mean += delta * Double(later.count) / Double(total)
        count = total
    }

    /// The figures, percentiles from `histogram` (nil without values).
    public func figures(_ histogram: RTTHistogram) -> RTTFigures? {
        guard count > 0 else { return nil }
        let p = reportedPercentiles.map { histogram.percentile($0, count: count, min: min, max: max) }
        return RTTFigures(
            min: Double(min), avg: mean, p50: p[0], p90: p[1], p99: p[2], max: Double(max),
            stddev: (m2 / Double(count)).squareRoot(),
            jitter: count >= 2 ? Double(jitterSum) / Double(count - 1) : nil)
    }
}

// MARK: - Histogram

public struct HistogramBin: Sendable, Hashable {
    public var bucket: Int32
    public var count: Int
    public init(bucket: Int32, count: Int) { self.bucket = bucket; self.count = count }
}

/// Buckets run from 0 to below this (RTTs up to 2^63 ns).
public let rttBucketCount = 3000

/// Bucket width ratio: 1.5 % per bucket, so the geometric middle of a bucket
/// is within sqrt(1.015) - 1 = 0.75 % of any value in it (the issue asks 1 %).
let rttBucketLogBase = 0.014888612493750654  // ln(1.015)

/// The bucket of an RTT in ns (values below 1 ns share bucket 0).
public func rttBucket(_ rttNs: Nanoseconds) -> Int32 {
    guard rttNs > 1 else { return 0 }
    return Int32((log(Double(rttNs)) / rttBucketLogBase).rounded(.down))
}

/// The geometric middle of a bucket, in ns.
public func rttBucketMiddle(_ bucket: Int32) -> Double {
    exp((Double(bucket) + 0.5) * rttBucketLogBase)
}

/// A period's RTT log histogram. Dense: a period gets tens of hours' bins
/// added (no hashing).
public struct RTTHistogram: Sendable {
    @usableFromInline var counts = [Int](repeating: 0, count: rttBucketCount)

    public init() {}

    @inlinable
    public mutating func add(_ rttNs: Nanoseconds) { counts[Int(rttBucket(rttNs))] += 1 }

    public mutating func add(_ bins: [HistogramBin]) {
        for bin in bins { counts[Int(bin.bucket)] += bin.count }
    }

    /// The nearest-rank `percent` percentile of its `count` values: the
    /// geometric middle of the bucket holding that rank, kept inside [min, max].
    public func percentile(_ percent: Int, count: Int, min: Nanoseconds, max: Nanoseconds) -> Double {
        let rank = nearestRankIndex(percent, count: count) + 1
        var seen = 0
        for (bucket, n) in counts.enumerated() where n > 0 {
            seen += n
            if seen >= rank { return Swift.min(Double(max), Swift.max(Double(min), rttBucketMiddle(Int32(bucket)))) }
        }
        return Double(max)
    }
}
