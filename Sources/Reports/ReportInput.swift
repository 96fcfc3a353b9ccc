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

    /// Reads what a report of `options` needs. Replies and ICMP errors are
    /// keyed by their probe's sent_ns, so the window itself selects them, even
    /// replies that arrived minutes after the window ended.
    public static func load(from db: Database, options: ReportOptions) throws -> ReportInput {
        let allTargets = try db.targets()
        let selected = try selectTargets(allTargets, options.targets)
        let ids: Set<Int64>? = options.targets.isEmpty ? nil : Set(selected.map(\.id))
        let sessions = try db.sessions(overlapping: options.since, options.until)
        var input = ReportInput(targets: allTargets, sessions: sessions)
        input.sessionTargets = try db.sessionTargets(sessions: sessions.map(\.id))
        input.gaps = try db.gaps(overlapping: options.since, options.until)
        for target in selected { input.addresses += try db.addresses(target: target.id) }
        try db.forEachProbe(from: options.since, to: options.until, targets: ids) { input.probes.append($0) }
        input.replies = try db.replies(from: options.since, to: options.until, targets: ids)
        input.icmpErrors = try db.icmpErrors(from: options.since, to: options.until, targets: ids)
        return input
    }
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
