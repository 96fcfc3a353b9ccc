import Store
import Testing
@testable import Reports

@Test func percentilesAreNearestRankStddevIsPopulationJitterIsMeanDifference() throws {
    // Ten received probes, sent in this order; sorted they are 1...10 ms.
    let rtts: [Double] = [5, 1, 4, 2, 3, 10, 6, 9, 7, 8]
    let input = singleTargetInput(probes: rtts.enumerated().map { probe(Double($0.offset), rttMs: $0.element) })
    let r = try summary(input, options()).rtt
    #expect(isClose(r.min, 1))
    #expect(isClose(r.max, 10))
    #expect(isClose(r.avg, 5.5))
    #expect(isClose(r.p50, 5))   // rank ceil(0.5 * 10) = 5
    #expect(isClose(r.p90, 9))   // rank 9
    #expect(isClose(r.p99, 10))  // rank ceil(9.9) = 10
    #expect(isClose(r.stddev, (99.0 / 12).squareRoot()))  // variance of 1...10 is (n² - 1) / 12
    // |1-5| + |4-1| + |2-4| + |3-2| + |10-3| + |6-10| + |9-6| + |7-9| + |8-7| = 27, over 9 pairs
    #expect(isClose(r.jitter, 3))
}

@Test func nearestRankOfThreeIsAlwaysAMeasuredValue() throws {
    let input = singleTargetInput(probes: [probe(0, rttMs: 3), probe(1, rttMs: 1), probe(2, rttMs: 2)])
    let r = try summary(input, options()).rtt
    #expect(isClose(r.p50, 2))  // rank ceil(1.5) = 2
    #expect(isClose(r.p90, 3))
    #expect(isClose(r.p99, 3))
}

@Test func jitterSkipsLostProbesAndNeedsTwoReceived() throws {
    let twoReceived = singleTargetInput(probes: [probe(0, rttMs: 10), probe(1), probe(2, rttMs: 14)])
    #expect(isClose(try summary(twoReceived, options()).rtt.jitter, 4))

    let oneReceived = try summary(singleTargetInput(probes: [probe(0, rttMs: 10), probe(1)]), options()).rtt
    #expect(oneReceived.jitter == nil)
    #expect(isClose(oneReceived.stddev, 0))
    #expect(isClose(oneReceived.p99, 10))

    let noneReceived = try summary(singleTargetInput(probes: [probe(0), probe(1)]), options())
    #expect(noneReceived.rtt == RTTStats())
    #expect(isClose(noneReceived.lossPct, 100))
}

@Test func lateRepliesAreNotInTheRTTStatistics() throws {
    let input = singleTargetInput(probes: [probe(0, rttMs: 10), probe(1, rttMs: 2500)])
    let r = try summary(input, options(timeout: 2 * second)).rtt
    #expect(isClose(r.max, 10))
}

/// Percentiles are selected, not sorted: the selection must pick exactly the
/// sorted array's values, with ties, runs and tiny arrays.
@Test func selectedRanksEqualSortedValues() {
    var state: UInt64 = 42
    func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
    for trial in 0..<300 {
        let n = trial < 20 ? trial + 1 : Int(next() % 5000) + 1
        let spread = [3, 100, 1_000_000_000][trial % 3]
        var values = (0..<n).map { _ in Nanoseconds(next() % UInt64(spread)) }
        if trial % 7 == 0 { values.sort() }
        if trial % 11 == 0 { values.sort(by: >) }
        let sorted = values.sorted()
        let ranks = [50, 90, 99].map { max(1, ($0 * n + 99) / 100) - 1 }
        #expect(selectRanks(&values, ranks) == ranks.map { sorted[$0] })
        #expect(values.sorted() == sorted)
    }
}

/// Not a timing assertion: ClassifiedProbe's layout is what the profile of a
/// day's report asked for (docs/BENCHMARKS.md), kept from growing by accident.
@Test func classifiedProbeStaysSmallAndTriviallyCopyable() {
    #expect(MemoryLayout<ClassifiedProbe>.stride == 40)
    #expect(_isPOD(ClassifiedProbe.self))
}
