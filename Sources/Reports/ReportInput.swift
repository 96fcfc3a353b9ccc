// Everything a report reads, as plain records: makeReport is a pure function
// of this, so tests build it by hand and the loader stays a few obvious calls.
import Store

public struct ReportInput: Sendable, Equatable {
    public var targets: [TargetRecord]
    public var sessions: [SessionRecord]
    public var sessionTargets: [SessionTargetRecord]
    public var gaps: [GapRecord]
    public var addresses: [AddressRecord]
    /// Sorted by sentNs.
    public var probes: [ProbeRecord]
    public var replies: [ReplyRecord]
    public var icmpErrors: [ICMPErrorRecord]
    /// Per-hour summaries of the selected targets for hours meeting the
    /// window; empty: classify every probe. With summaries, `probes`,
    /// `replies` and `icmpErrors` may leave out hours whose summaries every
    /// selected target can use (see load(from:options:summaries:)).
    public var summaries: [HourSummary] = []
    /// The selected targets' path probes of the window's rounds (a round's
    /// time, roundNs, in [since, until)), but for hours whose path summaries
    /// every selected target can use (loadPathProbes). Empty: no path rounds
    /// (paths off, an older database). Set in any order, kept by target
    /// (the loader's order, checked in one pass), so that a target's are a
    /// slice (pathProbes(of:)).
    public var pathProbes: [PathProbeRecord] = [] {
        didSet {
            if zip(pathProbes, pathProbes.dropFirst()).contains(where: { $0.targetID > $1.targetID }) {
                pathProbes.sort { $0.targetID < $1.targetID }
            }
        }
    }

    /// `target`'s path probes (pathProbes is by target).
    func pathProbes(of target: Int64) -> ArraySlice<PathProbeRecord> {
        func first(where after: (Int64) -> Bool) -> Int {
            var low = 0, high = pathProbes.count
            while low < high {
                let mid = (low + high) / 2
                if after(pathProbes[mid].targetID) { high = mid } else { low = mid + 1 }
            }
            return low
        }
        return pathProbes[first { $0 >= target }..<first { $0 > target }]
    }
    /// The selected targets' path summaries of the whole hours inside the
    /// window, still encoded (a year of 10 targets is 87,600 of them: a
    /// report decodes each while it adds it up). Empty: judge raw rounds.
    public var pathSummaries: [PathSummaryRow] = []

    public init(
        targets: [TargetRecord] = [], sessions: [SessionRecord] = [],
        sessionTargets: [SessionTargetRecord] = [], gaps: [GapRecord] = [],
        addresses: [AddressRecord] = [], probes: [ProbeRecord] = [],
        replies: [ReplyRecord] = [], icmpErrors: [ICMPErrorRecord] = []
    ) {
        self.targets = targets; self.sessions = sessions; self.sessionTargets = sessionTargets
        self.gaps = gaps; self.addresses = addresses; self.probes = probes
        self.replies = replies; self.icmpErrors = icmpErrors
    }

    /// What a report of [since, until) reads of this input, for many short
    /// reports over one long input (the live page's recent epochs): the
    /// probes, replies and ICMP errors sent in the whole UTC hours that meet
    /// the window (the summary path counts an edge hour's probes against its
    /// summary), the path rounds of those hours and their path summaries, and
    /// those hours' summaries; targets, sessions, gaps and
    /// addresses whole. Every report reads only that much of its input, so
    /// a report over the part equals one over the whole.
    func hours(meeting since: Nanoseconds, _ until: Nanoseconds) -> ReportInput {
        let from = floorDivide(since, summaryHourNs) * summaryHourNs
        let to = floorDivide(until - 1, summaryHourNs) * summaryHourNs + summaryHourNs
        var part = self
        part.probes = probes.filter { $0.sentNs >= from && $0.sentNs < to }
        part.replies = replies.filter { $0.sentNs >= from && $0.sentNs < to }
        part.icmpErrors = icmpErrors.filter { $0.sentNs >= from && $0.sentNs < to }
        part.summaries = summaries.filter { $0.hourNs >= from && $0.hourNs < to }
        // A report judges only rounds of its window: the rest would be read
        // past (a week's 2.7 M path probes for each new minute epoch).
        part.pathProbes = pathProbes.filter { $0.roundNs >= from && $0.roundNs < to }
        part.pathSummaries = pathSummaries.filter { $0.hourNs >= from && $0.hourNs < to }
        return part
    }

    /// Adds the selected targets' path rounds of the window (`pingem report`
    /// shows them): with `summaries`, the path summaries of its whole hours
    /// and raw path probes only of the hours where some selected target
    /// cannot use its summary (any window length: a year of 10 targets is
    /// 87,600 rows); without, every raw path probe (--exact). With `widths`
    /// (several reports of the window: export's levels), a summary counts as
    /// usable only if a report at every one of those epoch widths can use it.
    public mutating func loadPathProbes(from db: Database, options: ReportOptions, summaries: Bool = true,
                                        widths: [Nanoseconds?]? = nil) throws {
        let ids: Set<Int64>? = options.targets.isEmpty ? nil : Set(try selectTargets(targets, options.targets).map(\.id))
        guard summaries else {
            pathProbes = try db.pathProbes(targets: ids, from: options.since, to: options.until)
            return
        }
        let firstWhole = floorDivide(options.since + summaryHourNs - 1, summaryHourNs) * summaryHourNs
        pathSummaries = try db.pathSummaryRows(from: firstWhole, to: options.until - summaryHourNs + 1, targets: ids)
        var exact = exactPathSummaries(self, options)
        for width in widths ?? [] {
            var o = options
            o.epochNs = width
            exact.formIntersection(exactPathSummaries(self, o))
        }
        var skippable: [Nanoseconds: Bool] = [:]
        for row in pathSummaries {
            let usable = exact.contains(SummaryKey(target: row.targetID, hourNs: row.hourNs))
            skippable[row.hourNs] = (skippable[row.hourNs] ?? true) && usable
        }
        pathProbes = try db.pathProbes(
            targets: ids, ranges: rangesBetween(options.since, options.until, skipping: skippable.filter(\.value).keys))
    }

    /// What every report reads, whatever it reads of the probes: targets,
    /// the window's sessions and gaps, and the selected targets' addresses;
    /// with the selected targets and their ids (nil: all).
    private static func frame(from db: Database, options: ReportOptions) throws
        -> (input: ReportInput, selected: [TargetRecord], ids: Set<Int64>?) {
        let allTargets = try db.targets()
        let selected = try selectTargets(allTargets, options.targets)
        let ids: Set<Int64>? = options.targets.isEmpty ? nil : Set(selected.map(\.id))
        let sessions = try db.sessions(overlapping: options.since, options.until)
        var input = ReportInput(targets: allTargets, sessions: sessions)
        input.sessionTargets = try db.sessionTargets(sessions: sessions.map(\.id))
        input.gaps = try db.gaps(overlapping: options.since, options.until)
        for target in selected { input.addresses += try db.addresses(target: target.id) }
        return (input, selected, ids)
    }

    /// Reads what a report of `options` needs. Replies and ICMP errors are
    /// keyed by their probe's sent_ns, so the window itself selects them, even
    /// replies that arrived minutes after the window ended.
    public static func load(from db: Database, options: ReportOptions) throws -> ReportInput {
        var (input, selected, ids) = try frame(from: db, options: options)
        input.probes = try db.probes(from: options.since, to: options.until, targets: ids,
                                     reserve: estimatedProbes(input, options.since, options.until, targets: selected.count))
        input.replies = try db.replies(from: options.since, to: options.until, targets: ids)
        input.icmpErrors = try db.icmpErrors(from: options.since, to: options.until, targets: ids)
        return input
    }

    /// Like load(from:options:), but with the selected targets' hourly
    /// summaries, and raw rows only where some target needs them: an hour is
    /// not read when every selected target that has a summary for it can use
    /// that summary (targets without one had no probes then: the builder
    /// writes all targets of an hour together). Edge hours that have a
    /// summary are read whole, so pruned raw data shows (makeReport says so).
    public static func load(from db: Database, options: ReportOptions, summaries: Bool) throws -> ReportInput {
        var kept = KeptSummaries()
        return try load(from: db, options: options, summaries: summaries, kept: &kept)
    }

    /// load(from:options:summaries:), reading only the summaries `kept`
    /// lacks (and keeping them there): for a window loaded again and again.
    public static func load(from db: Database, options: ReportOptions, summaries: Bool,
                            kept: inout KeptSummaries) throws -> ReportInput {
        guard summaries else { return try load(from: db, options: options) }
        var (input, selected, ids) = try frame(from: db, options: options)
        let firstHour = floorDivide(options.since, summaryHourNs) * summaryHourNs
        for target in selected {
            input.summaries += try kept.summaries(db, from: firstHour, to: options.until, target: target.id)
        }
        let exact = exactSummaries(input, options)
        var skippable: [Nanoseconds: Bool] = [:]
        for summary in input.summaries {
            let usable = exact.contains(SummaryKey(target: summary.targetID, hourNs: summary.hourNs))
            skippable[summary.hourNs] = (skippable[summary.hourNs] ?? true) && usable
        }
        let lastHour = floorDivide(options.until - 1, summaryHourNs) * summaryHourNs
        let from = skippable[firstHour] != nil ? firstHour : options.since
        let to = skippable[lastHour] != nil ? lastHour + summaryHourNs : options.until
        for (start, end) in rangesBetween(from, to, skipping: skippable.filter(\.value).keys) {
            input.probes += try db.probes(from: start, to: end, targets: ids,
                                          reserve: estimatedProbes(input, start, end, targets: selected.count))
            input.replies += try db.replies(from: start, to: end, targets: ids)
            input.icmpErrors += try db.icmpErrors(from: start, to: end, targets: ids)
        }
        return input
    }
}

/// [from, to) without the whole hours `skipped`, as time ranges in order.
private func rangesBetween(_ from: Nanoseconds, _ to: Nanoseconds,
                           skipping skipped: some Collection<Nanoseconds>) -> [(Nanoseconds, Nanoseconds)] {
    var ranges: [(Nanoseconds, Nanoseconds)] = []
    var cursor = from
    for hour in skipped.sorted() {
        if hour > cursor { ranges.append((cursor, min(hour, to))) }
        cursor = max(cursor, hour + summaryHourNs)
    }
    if cursor < to { ranges.append((cursor, to)) }
    return ranges.filter { $0.0 < $0.1 }
}

/// About how many probes the sessions sent in [from, to) to `targets`
/// targets, capped: reserving it spares the copies (and fresh pages) of
/// growing an array of a million probes.
private func estimatedProbes(_ input: ReportInput, _ from: Nanoseconds, _ to: Nanoseconds, targets: Int) -> Int {
    var total = 0
    for session in input.sessions where session.intervalNs > 0 {
        let overlap = min(to, session.endNs) - max(from, session.startedNs)
        if overlap > 0 { total += Int(overlap / session.intervalNs + 1) * targets }
    }
    return min(total, 20_000_000)
}

/// The targets `wanted` names (by name, else by host), in the order asked;
/// all of them when `wanted` is empty.
func selectTargets(_ all: [TargetRecord], _ wanted: [String]) throws -> [TargetRecord] {
    if wanted.isEmpty { return all }
    var selected: [TargetRecord] = []
    var seen = Set<Int64>()
    for name in wanted {
        var matches = all.filter { $0.name == name }
        if matches.isEmpty { matches = all.filter { $0.host == name } }
        if matches.isEmpty {
            if all.isEmpty {
                throw ReportError("Unknown target \"\(name)\": this database has no targets yet, so record some with pingem record first.")
            }
            let known = all.map(\.name).joined(separator: ", ")
            throw ReportError("Unknown target \"\(name)\": use one of the recorded targets (\(known)).")
        }
        for target in matches where seen.insert(target.id).inserted { selected.append(target) }
    }
    return selected
}

/// Hour summaries kept between loads of a window that moves forward (serve's
/// live page reads a month's 7,200 of them every tick otherwise): a load
/// reads only the hours after the last one kept. A summary, once written, is
/// only ever written again with the same figures (Database.resummarize adds
/// the bucket counts /metrics wants, which no report reads), and a summary
/// is written only for an hour after the latest summarized one, so what is
/// kept stays true. Memory: about 250 bytes per hour and target.
public struct KeptSummaries: Sendable {
    private struct Kept: Sendable {
        var from: Nanoseconds
        var summaries: [HourSummary]
    }
    private var byTarget: [Int64: Kept] = [:]

    public init() {}

    /// The target's summaries of hours starting in [from, to), by hour.
    mutating func summaries(_ db: Database, from: Nanoseconds, to: Nanoseconds, target: Int64) throws -> [HourSummary] {
        guard var kept = byTarget[target], kept.from <= from else {
            let read = try db.summaries(from: from, to: to, target: target)
            byTarget[target] = Kept(from: from, summaries: read)
            return read
        }
        let next = max(from, (kept.summaries.last?.hourNs).map { $0 + summaryHourNs } ?? from)
        kept.summaries.removeAll { $0.hourNs < from }
        kept.summaries += try db.summaries(from: next, to: to, target: target)
        kept.from = from
        byTarget[target] = kept
        return kept.summaries.filter { $0.hourNs < to }
    }
}
