// Aggregation: classify every probe once with the report's timeout, then
// count per period. The definitions (received, late, lost, unknown, coverage,
// outages) are the spec quoted in the README; keep the two in step.
//
// Invariant: "the recorder was not running" is never loss. A probe without a
// reply whose timeout had not run out when its session's data ends is
// `unknown`, and time outside sessions (or inside gaps) has no probes and
// lowers coverage instead of raising loss.
import Store

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds the report of `options.targets` over [since, until).
public func makeReport(_ input: ReportInput, _ options: ReportOptions) throws -> Report {
    try validate(options)
    let selected = try selectTargets(input.targets, options.targets)
    let periods = try epochPeriods(options)
    let slots = TargetSlots(selected.map(\.id))
    let answers = answersBySlot(input, slots: slots, count: selected.count)
    // Counted first so each target's array is allocated once, not regrown and copied.
    var probeCounts = [Int](repeating: 0, count: selected.count)
    for probe in input.probes where probe.sentNs >= options.since && probe.sentNs < options.until {
        if let slot = slots.slot(probe.targetID) { probeCounts[slot] += 1 }
    }
    var probesByTarget = probeCounts.map { count -> [ProbeRecord] in
        var probes: [ProbeRecord] = []
        probes.reserveCapacity(count)
        return probes
    }
    for probe in input.probes where probe.sentNs >= options.since && probe.sentNs < options.until {
        if let slot = slots.slot(probe.targetID) { probesByTarget[slot].append(probe) }
    }

    var kinds = ErrorKindTable()
    var rtts: [Nanoseconds] = []  // scratch for summarize, reused by every period
    let targetReports = selected.map { target -> TargetReport in
        let slot = slots.slot(target.id)!
        var probes = probesByTarget[slot]
        // The loader gives send order; sorting is only a guard for hand-built input.
        if zip(probes, probes.dropFirst()).contains(where: { $0.sentNs > $1.sentNs }) {
            probes.sort { $0.sentNs < $1.sentNs }
        }
        let probed = Set(input.sessionTargets.lazy.filter { $0.targetID == target.id }.map(\.sessionID))
        let ownSessions = input.sessions.filter { probed.contains($0.id) }
        // Without session_target rows (hand-made data), still find the session a probe belongs to.
        var sessions = ownSessions.isEmpty ? input.sessions : ownSessions
        sessions.sort { $0.startedNs < $1.startedNs }

        let classified = classify(probes, sessions: sessions, answers: answers[slot],
                                  kinds: &kinds, timeoutNs: options.timeoutNs)
        let covered = coveredIntervals(ownSessions, gaps: input.gaps)

        let summary = summarize(classified[...], coverage: coverage(covered, options.since, options.until),
                                kinds: kinds, rtts: &rtts)
        var epochs: [Epoch] = []
        epochs.reserveCapacity(periods.count)
        var lower = 0
        for (start, end) in periods {
            var upper = lower
            while upper < classified.count && classified[upper].sentNs < end { upper += 1 }
            epochs.append(Epoch(start: start, end: end,
                                summary: summarize(classified[lower..<upper], coverage: coverage(covered, start, end),
                                                   kinds: kinds, rtts: &rtts)))
            lower = upper
        }
        return TargetReport(
            target: target.name, host: target.host,
            addresses: addressesInEffect(input.addresses, target: target.id, options.since, options.until),
            summary: summary, epochs: epochs,
            outages: findOutages(classified, sessions: sessions, minimum: options.outageMin))
    }
    return Report(since: options.since, until: options.until, epochNs: options.epochNs,
                  timeoutNs: options.timeoutNs, targets: targetReports)
}

private func validate(_ options: ReportOptions) throws {
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
private func epochPeriods(_ options: ReportOptions) throws -> [(Nanoseconds, Nanoseconds)] {
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

/// Replies and ICMP errors of one target, sorted by the probe they answer.
///
/// The loader gives them sorted by (sent_ns, target_id) and a target's probes
/// come in send order, so `classify` walks these with a cursor instead of
/// hashing a key per probe (the dictionary was ~8 % of a report).
private struct TargetAnswers {
    /// (sentNs, rttNs) of every reply row, sorted by sentNs.
    var replies: [(sentNs: Nanoseconds, rttNs: Nanoseconds)] = []
    /// ICMP errors sorted by sentNs; ties keep input order, so the first of
    /// equal rtts wins as before.
    var icmpErrors: [ICMPErrorRecord] = []
}

/// Replies and ICMP errors grouped by target slot.
private func answersBySlot(_ input: ReportInput, slots: TargetSlots, count: Int) -> [TargetAnswers] {
    var answers = [TargetAnswers](repeating: TargetAnswers(), count: count)
    for reply in input.replies {
        if let slot = slots.slot(reply.targetID) { answers[slot].replies.append((reply.sentNs, reply.rttNs)) }
    }
    for error in input.icmpErrors {
        if let slot = slots.slot(error.targetID) { answers[slot].icmpErrors.append(error) }
    }
    for slot in answers.indices {
        // Sorting is only a guard for hand-built input; Swift's sort is stable.
        if zip(answers[slot].replies, answers[slot].replies.dropFirst()).contains(where: { $0.sentNs > $1.sentNs }) {
            answers[slot].replies.sort { $0.sentNs < $1.sentNs }
        }
        if zip(answers[slot].icmpErrors, answers[slot].icmpErrors.dropFirst()).contains(where: { $0.sentNs > $1.sentNs }) {
            answers[slot].icmpErrors.sort { $0.sentNs < $1.sentNs }
        }
    }
    return answers
}

/// Position of each selected target, by id. Row ids are small positive
/// integers, so a plain array answers without hashing (two hashes per probe
/// were ~4 % of a report); anything else falls back to a dictionary.
private struct TargetSlots {
    private var direct: [Int] = []  // slot by id, -1 when not selected
    private var hashed: [Int64: Int] = [:]

    init(_ ids: [Int64]) {
        if let top = ids.max(), let bottom = ids.min(), bottom >= 0, top < 1 << 16 {
            direct = [Int](repeating: -1, count: Int(top) + 1)
            // The first slot of an id wins, like the dictionary's `first` below.
            for (slot, id) in ids.enumerated().reversed() { direct[Int(id)] = slot }
        } else {
            for (slot, id) in ids.enumerated() where hashed[id] == nil { hashed[id] = slot }
        }
    }

    func slot(_ id: Int64) -> Int? {
        if !direct.isEmpty {
            guard id >= 0 && id < Int64(direct.count) else { return nil }
            let slot = direct[Int(id)]
            return slot >= 0 ? slot : nil
        }
        return hashed[id]
    }
}

/// Error kind names seen in one report, so a classified probe carries a small
/// index instead of a String (fewer bytes per probe, no refcounting).
private struct ErrorKindTable {
    var names: [String] = []
    var indexByName: [String: Int32] = [:]
    mutating func code(_ name: String) -> Int32 {
        if let code = indexByName[name] { return code }
        let code = Int32(names.count)
        names.append(name)
        indexByName[name] = code
        return code
    }
}

struct ClassifiedProbe {
    enum Status: UInt8 { case received, lost, unknown }
    var sentNs: Nanoseconds
    var status: Status
    /// Only for lost probes whose first reply came after the timeout.
    var late: Bool
    /// First reply's rtt; meaningful when received.
    var rttNs: Nanoseconds
    var duplicates: Int
    /// Why a lost probe failed (send error or ICMP error): an index into the
    /// report's ErrorKindTable, -1 when unknown.
    var errorKind: Int32
    /// Index into the target's sessions (sorted by start), -1 when none.
    var session: Int
}

private func classify(
    _ probes: [ProbeRecord], sessions: [SessionRecord], answers: TargetAnswers, kinds: inout ErrorKindTable,
    timeoutNs: Nanoseconds
) -> [ClassifiedProbe] {
    var result: [ClassifiedProbe] = []
    result.reserveCapacity(probes.count)
    // Probes are in send order: every answer before the cursor is for an earlier probe.
    var replyCursor = 0, errorCursor = 0
    var latest = -1  // the last session started at or before the current probe
    for probe in probes {
        while latest + 1 < sessions.count && sessions[latest + 1].startedNs <= probe.sentNs { latest += 1 }
        var session = latest
        // Sessions of one target rarely overlap; if they do, prefer one that contains the probe.
        if session >= 0 && sessions[session].endNs < probe.sentNs {
            var earlier = session - 1
            while earlier >= 0 && sessions[earlier].endNs < probe.sentNs { earlier -= 1 }
            if earlier >= 0 { session = earlier }
        }

        var first = probe.rttNs
        var replyCount = probe.rttNs == nil ? 0 : 1
        let replies = answers.replies
        while replyCursor < replies.count && replies[replyCursor].sentNs < probe.sentNs { replyCursor += 1 }
        // Not consumed: a hand-built input may repeat a send time, and each such probe sees the same replies.
        var j = replyCursor
        while j < replies.count && replies[j].sentNs == probe.sentNs {
            first = min(first ?? replies[j].rttNs, replies[j].rttNs)
            replyCount += 1
            j += 1
        }
        var errorKind: Int32 = -1
        if let sendError = probe.sendError {
            errorKind = kinds.code(sendErrorKind(sendError))
        } else {
            let errors = answers.icmpErrors
            while errorCursor < errors.count && errors[errorCursor].sentNs < probe.sentNs { errorCursor += 1 }
            var firstError = -1
            var j = errorCursor
            while j < errors.count && errors[j].sentNs == probe.sentNs {
                if firstError < 0 || errors[j].rttNs < errors[firstError].rttNs { firstError = j }
                j += 1
            }
            if firstError >= 0 {
                let icmp = errors[firstError]
                errorKind = kinds.code(icmpErrorKind(family: icmp.family, type: icmp.type, code: icmp.code))
            }
        }

        var item = ClassifiedProbe(sentNs: probe.sentNs, status: .lost, late: false, rttNs: 0,
                                   duplicates: max(0, replyCount - 1), errorKind: -1, session: session)
        if let first, first <= timeoutNs {
            item.status = .received  // a reply in time wins over an ICMP error
            item.rttNs = first
        } else if first != nil {
            item.late = true
            item.errorKind = errorKind
        } else if errorKind >= 0 {
            item.errorKind = errorKind
        } else if session < 0 || probe.sentNs + timeoutNs > sessions[session].endNs {
            // The recorder stopped (or died) before this probe's timeout ran out.
            item.status = .unknown
        }
        result.append(item)
    }
    return result
}

// MARK: - Counting

/// Counts `probes`. `rtts` is scratch space reused across calls so epochs do
/// not allocate; `kinds` names the probes' error kind codes.
private func summarize(
    _ probes: ArraySlice<ClassifiedProbe>, coverage: Double, kinds: ErrorKindTable, rtts: inout [Nanoseconds]
) -> Summary {
    var summary = Summary()
    summary.coverage = coverage
    rtts.removeAll(keepingCapacity: true)
    var kindCounts = [Int](repeating: 0, count: kinds.names.count)
    var jitterSum = 0.0
    var previous: Nanoseconds?
    var sum = 0.0
    var low = Nanoseconds.max, high = Nanoseconds.min
    for probe in probes {
        summary.sent += 1
        summary.duplicates += probe.duplicates
        switch probe.status {
        case .received:
            summary.received += 1
            rtts.append(probe.rttNs)
            sum += Double(probe.rttNs)
            low = min(low, probe.rttNs)
            high = max(high, probe.rttNs)
            if let previous { jitterSum += Double(abs(probe.rttNs - previous)) }
            previous = probe.rttNs
        case .lost:
            summary.lost += 1
            if probe.late { summary.late += 1 }
            if probe.errorKind >= 0 {
                summary.errors += 1
                kindCounts[Int(probe.errorKind)] += 1
            }
        case .unknown:
            summary.unknown += 1
        }
    }
    for (code, count) in kindCounts.enumerated() where count > 0 { summary.errorKinds[kinds.names[code]] = count }
    let judged = summary.sent - summary.unknown
    if judged > 0 { summary.lossPct = Double(summary.lost) / Double(judged) * 100 }
    guard !rtts.isEmpty else { return summary }

    let n = rtts.count
    let ms = { (ns: Double) in ns / 1e6 }
    // Same summation order as before (send order), so the doubles are bit-identical.
    let mean = sum / Double(n)
    var squares = 0.0
    for rtt in rtts { squares += (Double(rtt) - mean) * (Double(rtt) - mean) }
    let variance = squares / Double(n)
    // Nearest rank: the value at 1-based rank ceil(p/100 * n), always a measured value.
    // Selection instead of a full sort; ranks ascend, so each search starts
    // where the last one's element sits (everything after it is not smaller).
    let rank50 = max(1, (50 * n + 99) / 100) - 1
    let rank90 = max(1, (90 * n + 99) / 100) - 1
    let rank99 = max(1, (99 * n + 99) / 100) - 1
    let p50 = rtts.withUnsafeMutableBufferPointer { selectNth($0, rank50, from: 0) }
    let p90 = rtts.withUnsafeMutableBufferPointer { selectNth($0, rank90, from: rank50) }
    let p99 = rtts.withUnsafeMutableBufferPointer { selectNth($0, rank99, from: rank90) }
    summary.rtt = RTTStats(
        min: ms(Double(low)), avg: ms(mean), p50: ms(Double(p50)), p90: ms(Double(p90)),
        p99: ms(Double(p99)), max: ms(Double(high)), stddev: ms(variance.squareRoot()),
        jitter: n >= 2 ? ms(jitterSum / Double(n - 1)) : nil)
    return summary
}

/// Reorders `values[start...]` so the element at `rank` is the one a full sort
/// would put there, with nothing smaller after it and nothing larger before it
/// (Hoare's quickselect, median-of-three pivot), and returns it. Everything
/// before `start` must already be no larger than everything from `start` on.
func selectNth(_ values: UnsafeMutableBufferPointer<Nanoseconds>, _ rank: Int, from start: Int) -> Nanoseconds {
    var low = start, high = values.count - 1
    while high > low {
        let mid = low + (high - low) / 2
        // Median of three as the pivot: sorted input does not go quadratic.
        if values[mid] < values[low] { values.swapAt(mid, low) }
        if values[high] < values[low] { values.swapAt(high, low) }
        if values[high] < values[mid] { values.swapAt(high, mid) }
        let pivot = values[mid]
        var i = low, j = high
        while i <= j {
            while values[i] < pivot { i += 1 }
            while values[j] > pivot { j -= 1 }
            if i <= j {
                values.swapAt(i, j)
                i += 1
                j -= 1
            }
        }
        // Now [low, j] <= pivot <= [i, high], and j < i; between them equals the pivot.
        if rank <= j {
            high = j
        } else if rank >= i {
            low = i
        } else {
            return values[rank]
        }
    }
    return values[rank]
}

// MARK: - Coverage

/// The union of the sessions' [start, end) minus their gaps, sorted and disjoint.
private func coveredIntervals(_ sessions: [SessionRecord], gaps: [GapRecord]) -> [(Nanoseconds, Nanoseconds)] {
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

private func coverage(_ covered: [(Nanoseconds, Nanoseconds)], _ start: Nanoseconds, _ end: Nanoseconds) -> Double {
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
        probe.session >= 0 ? sessions[probe.session].intervalNs : 0
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
private func addressesInEffect(_ all: [AddressRecord], target: Int64, _ since: Nanoseconds, _ until: Nanoseconds) -> [String] {
    let rows = all.filter { $0.targetID == target }.sorted { $0.sinceNs < $1.sinceNs }
    var result: [String] = []
    if let current = rows.last(where: { $0.sinceNs <= since }) { result.append(current.address) }
    for row in rows where row.sinceNs > since && row.sinceNs < until && !result.contains(row.address) {
        result.append(row.address)
    }
    return result
}
