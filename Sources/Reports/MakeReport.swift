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
/// `pathRuns`: summarized path hours kept between calls (PathRuns.swift).
func makeReports(
    _ input: ReportInput, _ options: ReportOptions, epochWidths: [Nanoseconds?], pathRuns: KeptPathRuns? = nil
) throws -> (reports: [Report], classified: [[ClassifiedProbe]]) {
    let (optionsByWidth, periodsByWidth) = try validated(options, epochWidths: epochWidths)
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
        let (classified, sessions) = classifyTarget(
            target, probes: probesOfTarget[t], input: input, index: index, timeoutNs: options.timeoutNs)
        let covered = coveredIntervals(
            of: target.id, sessions: input.sessions, sessionTargets: input.sessionTargets, gaps: input.gaps)

        let summary = summarize(classified[...], coverage: coverage(covered, options.since, options.until))
        let addresses = addressesInEffect(input.addresses, target: target.id, options.since, options.until)
        let probedAs = latestProbing(input, target: target.id, options.since, options.until)
        let outages = outagesOf([rawStretch(classified[...], sessions: sessions)].compactMap { $0 },
                                sessions: sessions, minimum: options.outageMin)
        let path = pathJudge(target, input: input, options: options, sessions: sessions, widths: optionsByWidth)
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
            var report = TargetReport(target: target.name, host: target.host, addresses: addresses,
                                      summary: summary, epochs: epochs, outages: outages)
            report.probed(as: probedAs)
            reports.append(report)
        }
        TargetReport.judgePaths(&reports, path, kept: pathRuns, target: target.id)
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
) -> ([ClassifiedProbe], [SessionRecord]) {
    var probes = probes
    // The loader gives send order; sorting is only a guard for hand-built input.
    if zip(probes, probes.dropFirst()).contains(where: { $0.sentNs > $1.sentNs }) {
        probes.sort { $0.sentNs < $1.sentNs }
    }
    let sessions = sessionsJudging(target.id, sessions: input.sessions, sessionTargets: input.sessionTargets)
    return (classify(probes[...], target: target.id, sessions: sessions, index: index, timeoutNs: timeoutNs), sessions)
}

/// `options` at each of `epochWidths`, each validated, and each one's epochs.
func validated(_ options: ReportOptions, epochWidths: [Nanoseconds?]) throws
    -> (options: [ReportOptions], periods: [[(Nanoseconds, Nanoseconds)]]) {
    let byWidth = epochWidths.map { width -> ReportOptions in
        var o = options
        o.epochNs = width
        return o
    }
    for o in byWidth { try validate(o) }
    return (byWidth, try byWidth.map(epochPeriods))
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

/// The report's epochs, cut to the window: the local calendar of
/// options.timeZone, or UTC multiples without one (EpochGrid.swift).
func epochPeriods(_ options: ReportOptions) throws -> [(Nanoseconds, Nanoseconds)] {
    guard let epoch = options.epochNs else { return [] }
    let span = options.until - options.since
    if span / epoch > 1_000_000 {
        throw ReportError("The window holds more than a million epochs: choose a longer --epoch or a shorter window.")
    }
    return epochPeriods(since: options.since, until: options.until, epochNs: epoch, timeZone: options.timeZone)
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
        var rows: ReplyRows
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
                    merged[merged.count - 1].rows.add(reply.rttNs)
                } else {
                    merged.append(Replies(sentNs: reply.sentNs, rows: ReplyRows(reply.rttNs)))
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
                    if error.answersBefore(last) { firsts[firsts.count - 1] = error }
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
    var verdict: Verdict
}

/// Judges each probe (Store's Judge) with a cursor beside the probes over the
/// target's sessions, replies and errors.
func classify(
    _ probes: ArraySlice<ProbeRecord>, target: Int64, sessions: [SessionRecord], index: ProbeIndex, timeoutNs: Nanoseconds
) -> [ClassifiedProbe] {
    var result: [ClassifiedProbe] = []
    result.reserveCapacity(probes.count)
    var cursor = SessionCursor(sessions)
    let replies = index.replies[target] ?? [], errors = index.icmpErrors[target] ?? []
    var replyCursor = 0, errorCursor = 0
    for probe in probes {
        let session = cursor.session(at: probe.sentNs)
        while replyCursor < replies.count && replies[replyCursor].sentNs < probe.sentNs { replyCursor += 1 }
        while errorCursor < errors.count && errors[errorCursor].sentNs < probe.sentNs { errorCursor += 1 }
        let rows = replyCursor < replies.count && replies[replyCursor].sentNs == probe.sentNs ? replies[replyCursor].rows : nil
        let error = errorCursor < errors.count && errors[errorCursor].sentNs == probe.sentNs ? errors[errorCursor] : nil
        let answers = ProbeAnswers(probe, replyRows: rows, icmpError: error)
        let verdict = answers.verdict(sentNs: probe.sentNs, sessionEndNs: cursor.endNs(session), timeoutNs: timeoutNs)
        let received = verdict == .received
        result.append(ClassifiedProbe(
            sentNs: probe.sentNs, rttNs: received ? answers.firstReplyNs! : 0,
            duplicates: Int32(clamping: answers.duplicates), session: Int32(session),
            failure: received ? nil : answers.failure, verdict: verdict))
    }
    return result
}

// MARK: - Counting

func summarize(_ probes: ArraySlice<ClassifiedProbe>, coverage: Double) -> Summary {
    var summary = Summary()
    summary.coverage = coverage
    var rtts: [Nanoseconds] = []
    rtts.reserveCapacity(probes.count)
    for probe in probes {
        summary.count(probe)
        if probe.verdict == .received { rtts.append(probe.rttNs) }
    }
    summary.lossPct = lossPercent(lost: summary.lost, sent: summary.sent, unknown: summary.unknown)
    summary.rtt = RTTStats(exactRTTFigures(&rtts))
    return summary
}

extension Summary {
    /// Counts one judged probe (its RTT is the caller's: the raw summary and
    /// the summary path's accumulator each gather RTTs their own way).
    /// Inlined: it runs once per probe of every period.
    @inline(__always)
    mutating func count(_ probe: ClassifiedProbe) {
        sent += 1
        duplicates += Int(probe.duplicates)
        switch probe.verdict {
        case .received: received += 1
        case .late: lost += 1; late += 1
        case .lost: lost += 1
        case .unknown: unknown += 1
        }
        if let failure = probe.failure {
            errors += 1
            errorKinds[failureName(failure), default: 0] += 1
        }
    }
}

extension RTTStats {
    /// The Judge's figures (nanoseconds) in milliseconds; all nil without any.
    init(_ figures: RTTFigures?) {
        guard let f = figures else { self.init(); return }
        let ms = { (ns: Double) in ns / 1e6 }
        self.init(min: ms(f.min), avg: ms(f.avg), p50: ms(f.p50), p90: ms(f.p90), p99: ms(f.p99), max: ms(f.max),
                  stddev: ms(f.stddev), jitter: f.jitter.map(ms))
    }
}

// MARK: - Outages and addresses

/// The lost runs of raw probes of one target (in send order) as one stretch;
/// nil without probes.
func rawStretch(_ probes: ArraySlice<ClassifiedProbe>, sessions: [SessionRecord]) -> RunStretch? {
    guard let first = probes.first, let last = probes.last else { return nil }
    var builder = LostRunBuilder()
    var runs: [LostRun] = []
    for probe in probes {
        let interval = probe.session >= 0 ? sessions[Int(probe.session)].intervalNs : 0
        if let run = builder.add(sentNs: probe.sentNs, session: Int64(probe.session), intervalNs: interval,
                                 lost: probe.verdict.isLost) {
            runs.append(run)
        }
    }
    if let open = builder.openRun { runs.append(open) }
    func id(_ probe: ClassifiedProbe) -> Int64 { probe.session >= 0 ? sessions[Int(probe.session)].id : -1 }
    return RunStretch(firstNs: first.sentNs, firstSession: id(first), lastNs: last.sentNs, lastSession: id(last), runs: runs)
}

/// The outages of stretches in time order: their lost runs stitched, those
/// of at least `minimum` probes.
func outagesOf(_ stretches: [RunStretch], sessions: [SessionRecord], minimum: Int) -> [Outage] {
    stitchLostRuns(stretches, sessions: sessions).compactMap { run in
        run.count >= minimum ? Outage(start: run.startNs, end: run.endNs!, lost: run.count) : nil
    }
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

/// The session_target row of the latest session in [since, until) that
/// probed the target: how it was probed there (source, interface, TOS).
func latestProbing(_ input: ReportInput, target: Int64, _ since: Nanoseconds, _ until: Nanoseconds) -> SessionTargetRecord? {
    let inWindow = Set(input.sessions.filter { $0.startedNs < until && $0.endNs >= since }.map(\.id))
    let started = Dictionary(input.sessions.map { ($0.id, $0.startedNs) }, uniquingKeysWith: { a, _ in a })
    return input.sessionTargets.filter { $0.targetID == target && inWindow.contains($0.sessionID) }
        .max { (started[$0.sessionID] ?? 0) < (started[$1.sessionID] ?? 0) }
}
