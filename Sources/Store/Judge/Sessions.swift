// Which recorder sessions speak for a target, and when. A probe is judged
// against the session it belongs to (its end decides `unknown`); a period's
// coverage is the time the target's sessions were probing it, minus gaps.
//
// Sessions come from session_target: the sessions that probed the target.
// Hand-made data (tests, imports) may have no session_target rows; then a
// probe is still judged against every session, but such sessions give no
// coverage (coverage says "a recorder was probing this target").
//
// A target added or removed while its session ran (a reloaded targets
// file) covers only its spans of that session: after a removal its time is
// "no data", never loss. Its probes are still judged with the whole session,
// because the recorder kept matching replies after the removal: a probe sent
// just before it is lost or received, not unknown.

/// The sessions that probed `target` (session_target rows), in the order given.
public func sessionsProbing(_ target: Int64, sessions: [SessionRecord],
                            sessionTargets: [SessionTargetRecord]) -> [SessionRecord] {
    let probed = Set(sessionTargets.lazy.filter { $0.targetID == target }.map(\.sessionID))
    return sessions.filter { probed.contains($0.id) }
}

/// The sessions `target`'s probes are judged with, by start time: those that
/// probed it, or every session when none did (hand-made data).
public func sessionsJudging(_ target: Int64, sessions: [SessionRecord],
                            sessionTargets: [SessionTargetRecord]) -> [SessionRecord] {
    var own = sessionsProbing(target, sessions: sessions, sessionTargets: sessionTargets)
    if own.isEmpty { own = sessions }
    return own.sorted { $0.startedNs < $1.startedNs }
}

/// Finds the session of each probe of one target, walking the probes in send
/// order beside the target's sessions (sorted by start) without searching.
public struct SessionCursor: Sendable {
    public let sessions: [SessionRecord]
    /// The last session started at or before the previous probe (-1: none).
    @usableFromInline var latest = -1
    @usableFromInline var previousNs = Nanoseconds.min

    public init(_ sessions: [SessionRecord]) { self.sessions = sessions }

    /// The index in `sessions` of the session the probe sent at `sentNs`
    /// belongs to, -1 when none started before it: the latest started at or
    /// before it, or, when that one had ended, an earlier one still running
    /// (sessions of one target rarely overlap). Probes out of send order are
    /// allowed, only slower.
    @inlinable @inline(__always)
    public mutating func session(at sentNs: Nanoseconds) -> Int {
        if sentNs < previousNs { latest = -1 }
        previousNs = sentNs
        while latest + 1 < sessions.count && sessions[latest + 1].startedNs <= sentNs { latest += 1 }
        var session = latest
        if session >= 0 && sessions[session].endNs < sentNs {
            var earlier = session - 1
            while earlier >= 0 && sessions[earlier].endNs < sentNs { earlier -= 1 }
            if earlier >= 0 { session = earlier }
        }
        return session
    }

    /// The end of the session at `index` (nil for -1).
    @inlinable
    public func endNs(_ index: Int) -> Nanoseconds? { index >= 0 ? sessions[index].endNs : nil }

    /// The probe interval of the session at `index` (0 for -1).
    @inlinable
    public func intervalNs(_ index: Int) -> Nanoseconds { index >= 0 ? sessions[index].intervalNs : 0 }
}

// MARK: - Coverage

/// The stretches in which a recorder was probing `target`: its sessions
/// (session_target), each cut to the target's spans in it, minus the gaps.
public func coveredIntervals(of target: Int64, sessions: [SessionRecord], sessionTargets: [SessionTargetRecord],
                             gaps: [GapRecord]) -> [(Nanoseconds, Nanoseconds)] {
    var spans: [Int64: [TargetSpan]] = [:]
    for row in sessionTargets where row.targetID == target && !row.spans.isEmpty { spans[row.sessionID] = row.spans }
    var pieces: [SessionRecord] = []
    for session in sessionsProbing(target, sessions: sessions, sessionTargets: sessionTargets) {
        guard let own = spans[session.id] else { pieces.append(session); continue }
        for span in own {
            // A piece is the session over the span: its gaps still apply.
            var piece = session
            piece.startedNs = max(session.startedNs, span.startNs)
            piece.stoppedNs = min(session.endNs, span.endNs ?? session.endNs)
            if piece.startedNs < piece.endNs { pieces.append(piece) }
        }
    }
    return coveredIntervals(pieces, gaps: gaps)
}

/// The union of the sessions' [start, end) minus their gaps, sorted and disjoint.
public func coveredIntervals(_ sessions: [SessionRecord], gaps: [GapRecord]) -> [(Nanoseconds, Nanoseconds)] {
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

/// The fraction of [start, end) inside `covered` (coveredIntervals), in [0, 1].
public func coverage(_ covered: [(Nanoseconds, Nanoseconds)], _ start: Nanoseconds, _ end: Nanoseconds) -> Double {
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
