// Aggregation: classify every probe once with the report's timeout, then
// count per period. The definitions (received, late, lost, unknown, coverage,
// outages) are the spec quoted in the README; keep the two in step.
//
// Invariant: "the recorder was not running" is never loss. A probe without a
// reply whose timeout had not run out when its session's data ends is
// `unknown`, and time outside sessions (or inside gaps) has no probes and
// lowers coverage instead of raising loss.
import Dispatch
import Store
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds the report of `options.targets` over [since, until).
/// With summaries in the input (ReportInput.load(..., summaries: true)),
/// whole hours whose summary is exact for these options come from it
/// (SummaryPath.swift); without, every probe is classified.
public func makeReport(_ input: ReportInput, _ options: ReportOptions) throws -> Report {
    if !input.summaries.isEmpty { return try makeSummaryReport(input, options) }
    return try makeReports(input, options, epochWidths: [options.epochNs]).reports[0]
}

/// The reports of one window at several epoch widths (nil: no epochs), and
/// each selected target's classified probes. Classification, the whole-window
/// summary and the outages do not depend on the epoch width, so they are
/// computed once: `pingem export html` needs three widths of a week in under
/// two seconds. Each report equals makeReport with that epoch width.
func makeReports(
    _ input: ReportInput, _ options: ReportOptions, epochWidths: [Nanoseconds?]
) throws -> (reports: [Report], classified: [[ClassifiedProbe]]) {
    let optionsByWidth = epochWidths.map { width -> ReportOptions in
        var o = options
        o.epochNs = width
        return o
    }
    for o in optionsByWidth { try validate(o) }
    let periodsByWidth = try optionsByWidth.map(epochPeriods)
    let selected = try selectTargets(input.targets, options.targets)
    let index = ProbeIndex(input)
    let wanted = Set(selected.map(\.id))

    var probesByTarget: [Int64: [ProbeRecord]] = [:]
    for probe in input.probes
    where probe.sentNs >= options.since && probe.sentNs < options.until && wanted.contains(probe.targetID) {
        probesByTarget[probe.targetID, default: []].append(probe)
    }

    // Targets are independent: each is classified and counted on its own
    // core (a week of five targets is 3 M probes), results kept in order.
    let perTarget = Mutex([(reports: [TargetReport], classified: [ClassifiedProbe])?](repeating: nil, count: selected.count))
    let probesOfTarget = selected.map { probesByTarget[$0.id] ?? [] }
    probesByTarget = [:]
    DispatchQueue.concurrentPerform(iterations: selected.count) { t in
        let target = selected[t]
        let (classified, sessions, probed) = classifyTarget(
            target, probes: probesOfTarget[t], input: input, index: index, timeoutNs: options.timeoutNs)
        let covered = coveredIntervals(input.sessions.filter { probed.contains($0.id) }, gaps: input.gaps)

        let summary = summarize(classified[...], coverage: coverage(covered, options.since, options.until))
        let addresses = addressesInEffect(input.addresses, target: target.id, options.since, options.until)
        let outages = findOutages(classified, sessions: sessions, minimum: options.outageMin)
        var reports: [TargetReport] = []
        for periods in periodsByWidth {
            var epochs: [Epoch] = []
            epochs.reserveCapacity(periods.count)
            var lower = 0
            for (start, end) in periods {
                var upper = lower
                while upper < classified.count && classified[upper].sentNs < end { upper += 1 }
                epochs.append(Epoch(start: start, end: end,
                                    summary: summarize(classified[lower..<upper], coverage: coverage(covered, start, end))))
                lower = upper
            }
            reports.append(TargetReport(
                target: target.name, host: target.host, addresses: addresses,
                summary: summary, epochs: epochs, outages: outages))
        }
        perTarget.withLock { $0[t] = (reports, classified) }
    }
    let results = perTarget.withLock { $0 }.map { $0! }
    let targetReports = epochWidths.indices.map { w in results.map { $0.reports[w] } }
    let classifiedByTarget = results.map(\.classified)
    let reports = optionsByWidth.enumerated().map { w, o in
        Report(since: o.since, until: o.until, epochNs: o.epochNs, timeoutNs: o.timeoutNs, targets: targetReports[w])
    }
    return (reports, classifiedByTarget)
}

private func classifyTarget(
    _ target: TargetRecord, probes: [ProbeRecord], input: ReportInput, index: ProbeIndex, timeoutNs: Nanoseconds
) -> ([ClassifiedProbe], [SessionRecord], Set<Int64>) {
    var probes = probes
    // The loader gives send order; sorting is only a guard for hand-built input.
    if zip(probes, probes.dropFirst()).contains(where: { $0.sentNs > $1.sentNs }) {
        probes.sort { $0.sentNs < $1.sentNs }
    }
    let probed = Set(input.sessionTargets.lazy.filter { $0.targetID == target.id }.map(\.sessionID))
    var sessions = input.sessions.filter { probed.contains($0.id) }
    // Without session_target rows (hand-made data), still find the session a probe belongs to.
    if sessions.isEmpty { sessions = input.sessions }
    sessions.sort { $0.startedNs < $1.startedNs }
    return (classify(probes[...], target: target.id, sessions: sessions, index: index, timeoutNs: timeoutNs), sessions, probed)
}

func validate(_ options: ReportOptions) throws {
    if options.since >= options.until {
        throw ReportError("The report window is empty: choose a start (--since) before its end (--until).")
    }
    if options.timeoutNs <= 0 {
        throw ReportError("The timeout must be positive: give --timeout a duration such as 2s.")
    }
    if let epoch = options.epochNs, epoch <= 0 {
        throw ReportError("The epoch length must be positive: give --epoch a duration such as 5m.")
    }
    if options.outageMin < 1 {
        throw ReportError("The outage length must be at least 1 probe: give --outage-min a positive number.")
    }
}

/// [k*E, (k+1)*E) in Unix time, cut to the window: epochs align to UTC.
func epochPeriods(_ options: ReportOptions) throws -> [(Nanoseconds, Nanoseconds)] {
    guard let epoch = options.epochNs else { return [] }
    let span = options.until - options.since
    if span / epoch > 1_000_000 {
        throw ReportError("The window holds more than a million epochs: choose a longer --epoch or a shorter window.")
    }
    var start = floorDivide(options.since, epoch) * epoch
    var periods: [(Nanoseconds, Nanoseconds)] = []
    while start < options.until {
        periods.append((max(start, options.since), min(start + epoch, options.until)))
        start += epoch
    }
    return periods
}

func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

// MARK: - Classification

/// Replies and ICMP errors by the probe they answer: per target, in send
/// order, so classify walks them with a cursor beside the probes instead of
/// hashing every probe (two hash lookups per probe were an eighth of a day's
/// report; docs/BENCHMARKS.md).
struct ProbeIndex {
    struct Replies {
        var sentNs: Nanoseconds
        /// Smallest rtt among the reply rows, and how many there are.
        var first: Nanoseconds
        var count: Int
    }
    var replies: [Int64: [Replies]] = [:]
    /// The first ICMP error (smallest rtt; the earliest given on a tie) of each probe.
    var icmpErrors: [Int64: [ICMPErrorRecord]] = [:]

    init(_ input: ReportInput) {
        var rows: [Int64: [ReplyRecord]] = [:]
        for reply in input.replies { rows[reply.targetID, default: []].append(reply) }
        for (target, var list) in rows {
            // The loader gives send order; hand-built input may not (stable: ties keep their order).
            if zip(list, list.dropFirst()).contains(where: { $0.sentNs > $1.sentNs }) { list = stableSorted(list) { $0.sentNs < $1.sentNs } }
            var merged: [Replies] = []
            merged.reserveCapacity(list.count)
            for reply in list {
                if let last = merged.last, last.sentNs == reply.sentNs {
                    merged[merged.count - 1].first = min(last.first, reply.rttNs)
                    merged[merged.count - 1].count += 1
                } else {
                    merged.append(Replies(sentNs: reply.sentNs, first: reply.rttNs, count: 1))
                }
            }
            replies[target] = merged
        }
        var errorRows: [Int64: [ICMPErrorRecord]] = [:]
        for error in input.icmpErrors { errorRows[error.targetID, default: []].append(error) }
        for (target, var list) in errorRows {
            if zip(list, list.dropFirst()).contains(where: { $0.sentNs > $1.sentNs }) { list = stableSorted(list) { $0.sentNs < $1.sentNs } }
            var firsts: [ICMPErrorRecord] = []
            for error in list {
                if let last = firsts.last, last.sentNs == error.sentNs {
                    if error.rttNs < last.rttNs { firsts[firsts.count - 1] = error }
                } else {
                    firsts.append(error)
                }
            }
            icmpErrors[target] = firsts
        }
    }
}

/// A stable sort (Swift's sort is not documented as stable).
private func stableSorted<T>(_ values: [T], by less: (T, T) -> Bool) -> [T] {
    values.enumerated().sorted { less($0.element, $1.element) || (!less($1.element, $0.element) && $0.offset < $1.offset) }.map(\.element)
}

/// 40 bytes, fields ordered so: a day of 10 targets is 864,000 of them, and
/// fresh pages for them were a visible share of a report (docs/BENCHMARKS.md).
struct ClassifiedProbe {
    enum Status: UInt8 { case received, lost, unknown }
    var sentNs: Nanoseconds
    /// First reply's rtt; meaningful when received.
    var rttNs: Nanoseconds
    var duplicates: Int32
    /// Index into the target's sessions (sorted by start), -1 when none.
    var session: Int32
    /// Why a lost probe failed (send error or ICMP error), if known. A plain
    /// value, not its name: ClassifiedProbe stays trivially copyable (no
    /// retain/release per probe); the name is made when counted.
    var failure: FailureKind?
    var status: Status
    /// Only for lost probes whose first reply came after the timeout.
    var late: Bool
    var errorKind: String? { failure.map(failureName) }
}

func classify(
    _ probes: ArraySlice<ProbeRecord>, target: Int64, sessions: [SessionRecord], index: ProbeIndex, timeoutNs: Nanoseconds
) -> [ClassifiedProbe] {
    var result: [ClassifiedProbe] = []
    result.reserveCapacity(probes.count)
    var latest = -1  // the last session started at or before the current probe
    let replies = index.replies[target] ?? [], errors = index.icmpErrors[target] ?? []
    var replyCursor = 0, errorCursor = 0
    for probe in probes {
        while latest + 1 < sessions.count && sessions[latest + 1].startedNs <= probe.sentNs { latest += 1 }
        var session = latest
        // Sessions of one target rarely overlap; if they do, prefer one that contains the probe.
        if session >= 0 && sessions[session].endNs < probe.sentNs {
            var earlier = session - 1
            while earlier >= 0 && sessions[earlier].endNs < probe.sentNs { earlier -= 1 }
            if earlier >= 0 { session = earlier }
        }

        while replyCursor < replies.count && replies[replyCursor].sentNs < probe.sentNs { replyCursor += 1 }
        while errorCursor < errors.count && errors[errorCursor].sentNs < probe.sentNs { errorCursor += 1 }
        var first = probe.rttNs
        var replyCount = probe.rttNs == nil ? 0 : 1
        if replyCursor < replies.count && replies[replyCursor].sentNs == probe.sentNs {
            let extra = replies[replyCursor]
            first = min(first ?? extra.first, extra.first)
            replyCount += extra.count
        }
        var failure: FailureKind?
        if let sendError = probe.sendError {
            failure = .send(sendError)
        } else if errorCursor < errors.count && errors[errorCursor].sentNs == probe.sentNs {
            let icmp = errors[errorCursor]
            failure = .icmp(family: icmp.family, type: icmp.type, code: icmp.code)
        }

        var item = ClassifiedProbe(sentNs: probe.sentNs, rttNs: 0, duplicates: Int32(clamping: max(0, replyCount - 1)),
                                   session: Int32(session), failure: nil, status: .lost, late: false)
        if let first, first <= timeoutNs {
            item.status = .received  // a reply in time wins over an ICMP error
            item.rttNs = first
        } else if first != nil {
            item.late = true
            item.failure = failure
        } else if failure != nil {
            item.failure = failure
        } else if session < 0 || probe.sentNs + timeoutNs > sessions[session].endNs {
            // The recorder stopped (or died) before this probe's timeout ran out.
            item.status = .unknown
        }
        result.append(item)
    }
    return result
}

// MARK: - Counting

func summarize(_ probes: ArraySlice<ClassifiedProbe>, coverage: Double) -> Summary {
    var summary = Summary()
    summary.coverage = coverage
    var rtts: [Nanoseconds] = []
    rtts.reserveCapacity(probes.count)
    var jitterSum = 0.0
    var previous: Nanoseconds?
    for probe in probes {
        summary.sent += 1
        summary.duplicates += Int(probe.duplicates)
        switch probe.status {
        case .received:
            summary.received += 1
            rtts.append(probe.rttNs)
            if let previous { jitterSum += Double(abs(probe.rttNs - previous)) }
            previous = probe.rttNs
        case .lost, .unknown:
            summary.countUnanswered(probe)
        }
    }
    let judged = summary.sent - summary.unknown
    if judged > 0 { summary.lossPct = Double(summary.lost) / Double(judged) * 100 }
    guard !rtts.isEmpty else { return summary }

    let n = rtts.count
    let ms = { (ns: Double) in ns / 1e6 }
    let mean = rtts.reduce(0.0) { $0 + Double($1) } / Double(n)
    let variance = rtts.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(n)
    // Nearest rank: the value at 1-based rank ceil(p/100 * n), always a
    // measured value. Selected, not sorted: three quickselects are O(n), and
    // sorting every 5-minute epoch was a tenth of a day's report.
    let ranks = [50, 90, 99].map { max(1, ($0 * n + 99) / 100) - 1 }
    let picked = selectRanks(&rtts, ranks)
    let low = rtts.min()!, high = rtts.max()!
    summary.rtt = RTTStats(
        min: ms(Double(low)), avg: ms(mean), p50: ms(Double(picked[0])), p90: ms(Double(picked[1])),
        p99: ms(Double(picked[2])), max: ms(Double(high)), stddev: ms(variance.squareRoot()),
        jitter: n >= 2 ? ms(jitterSum / Double(n - 1)) : nil)
    return summary
}

/// The values at 0-based `ranks` (ascending) of `values` as if sorted, by
/// quickselect: each search continues right of the previous rank.
func selectRanks(_ values: inout [Nanoseconds], _ ranks: [Int]) -> [Nanoseconds] {
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

/// Sorts round-trip times ascending. Large sets (a target's whole week is
/// 600 k values) take an LSD radix sort of the offsets from the minimum, a few
/// times faster than the comparison sort; small sets take the standard sort.
func sortRTTs(_ values: inout [Nanoseconds]) {
    if values.count < 1024 { values.sort(); return }
    var low = values[0], high = values[0]
    for v in values { low = min(low, v); high = max(high, v) }
    // Round-trip times are never negative, so the offsets fit UInt64; any
    // other input keeps the comparison sort.
    guard low >= 0 else { values.sort(); return }
    let range = UInt64(high - low)
    var keys = values.map { UInt64($0 - low) }
    var buffer = [UInt64](repeating: 0, count: keys.count)
    let bits: UInt64 = 11, mask: UInt64 = (1 << 11) - 1
    var shift: UInt64 = 0
    while shift < 64 && (range >> shift) != 0 {
        var starts = [Int](repeating: 0, count: Int(mask) + 2)
        for k in keys { starts[Int((k >> shift) & mask) + 1] += 1 }
        for i in 1..<starts.count { starts[i] += starts[i - 1] }
        for k in keys {
            let digit = Int((k >> shift) & mask)
            buffer[starts[digit]] = k
            starts[digit] += 1
        }
        swap(&keys, &buffer)
        shift += bits
    }
    for i in keys.indices { values[i] = Int64(keys[i]) + low }
}

// MARK: - Coverage

/// The union of the sessions' [start, end) minus their gaps, sorted and disjoint.
func coveredIntervals(_ sessions: [SessionRecord], gaps: [GapRecord]) -> [(Nanoseconds, Nanoseconds)] {
    var pieces: [(Nanoseconds, Nanoseconds)] = []
    for session in sessions {
        var cursor = session.startedNs
        let own = gaps.filter { $0.sessionID == session.id }.sorted { $0.startNs < $1.startNs }
        for gap in own {
            let start = max(gap.startNs, cursor), end = min(gap.endNs, session.endNs)
            if start >= end { continue }
            if start > cursor { pieces.append((cursor, start)) }
            cursor = end
        }
        if session.endNs > cursor { pieces.append((cursor, session.endNs)) }
    }
    pieces.sort { $0.0 < $1.0 }
    var merged: [(Nanoseconds, Nanoseconds)] = []
    for piece in pieces {
        if let last = merged.last, piece.0 <= last.1 {
            merged[merged.count - 1].1 = max(last.1, piece.1)
        } else {
            merged.append(piece)
        }
    }
    return merged
}

func coverage(_ covered: [(Nanoseconds, Nanoseconds)], _ start: Nanoseconds, _ end: Nanoseconds) -> Double {
    // Binary search for the first interval ending after `start`.
    var low = 0, high = covered.count
    while low < high {
        let mid = (low + high) / 2
        if covered[mid].1 <= start { low = mid + 1 } else { high = mid }
    }
    var total: Int64 = 0
    var i = low
    while i < covered.count && covered[i].0 < end {
        total += min(covered[i].1, end) - max(covered[i].0, start)
        i += 1
    }
    return min(1, max(0, Double(total) / Double(end - start)))
}

// MARK: - Outages and addresses

private func findOutages(_ probes: [ClassifiedProbe], sessions: [SessionRecord], minimum: Int) -> [Outage] {
    func interval(_ probe: ClassifiedProbe) -> Nanoseconds {
        probe.session >= 0 ? sessions[Int(probe.session)].intervalNs : 0
    }
    // Same session and less than 1.5 intervals apart: a gap or a restart splits a run.
    func consecutive(_ a: ClassifiedProbe, _ b: ClassifiedProbe) -> Bool {
        a.session >= 0 && a.session == b.session && 2 * (b.sentNs - a.sentNs) < 3 * interval(a)
    }
    var outages: [Outage] = []
    var runStart = -1, runLast = -1
    func close(end: Nanoseconds) {
        let count = runLast - runStart + 1
        if count >= minimum { outages.append(Outage(start: probes[runStart].sentNs, end: end, lost: count)) }
        runStart = -1
    }
    for i in probes.indices {
        let probe = probes[i]
        if runStart >= 0 {
            let last = probes[runLast]
            if consecutive(last, probe) {
                if probe.status == .lost { runLast = i; continue }
                close(end: probe.sentNs)
            } else {
                close(end: last.sentNs + interval(last))
            }
        }
        if probe.status == .lost { runStart = i; runLast = i }
    }
    if runStart >= 0 { close(end: probes[runLast].sentNs + interval(probes[runLast])) }
    return outages
}

/// The address in effect at `since`, then each new one before `until`, distinct, in order.
func addressesInEffect(_ all: [AddressRecord], target: Int64, _ since: Nanoseconds, _ until: Nanoseconds) -> [String] {
    let rows = all.filter { $0.targetID == target }.sorted { $0.sinceNs < $1.sinceNs }
    var result: [String] = []
    if let current = rows.last(where: { $0.sinceNs <= since }) { result.append(current.address) }
    for row in rows where row.sinceNs > since && row.sinceNs < until && !result.contains(row.address) {
        result.append(row.address)
    }
    return result
}

extension Summary {
    /// Counts a probe judged lost or unknown. Shared by the raw summary and
    /// the summary path's accumulator; each gathers received probes' RTTs
    /// its own way.
    mutating func countUnanswered(_ probe: ClassifiedProbe) {
        switch probe.status {
        case .lost:
            lost += 1
            if probe.late { late += 1 }
            if let failure = probe.failure {
                errors += 1
                errorKinds[failureName(failure), default: 0] += 1
            }
        case .unknown:
            unknown += 1
        case .received:
            break
        }
    }
}
