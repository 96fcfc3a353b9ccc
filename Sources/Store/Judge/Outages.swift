// Outages: runs of consecutive lost probes. Two probes are consecutive when
// the same session sent them less than 1.5 of its intervals apart, so a
// recorder's gap or restart splits a run instead of stretching it over time
// nobody watched. A run ends at the next probe's send time when that probe
// is consecutive, else one interval after its last lost probe.
//
// One builder finds the runs of a stretch of probes (the hour summarizer's
// hour, the report's raw probes); `stitchLostRuns` joins the runs of
// stretches that follow each other (raw probes and summarized hours).

/// A run of consecutive lost probes.
public struct LostRun: Sendable, Hashable {
    /// Send time of its first and last lost probe.
    public var startNs: Nanoseconds
    public var lastNs: Nanoseconds
    public var count: Int
    /// Where its outage ends when the run ends inside its stretch (the next
    /// probe's send time, or last + one interval when the next probe is not
    /// consecutive); nil when it reaches the stretch's last probe (it may go on).
    public var endNs: Nanoseconds?
    public init(startNs: Nanoseconds, lastNs: Nanoseconds, count: Int, endNs: Nanoseconds?) {
        self.startNs = startNs; self.lastNs = lastNs; self.count = count; self.endNs = endNs
    }
}

/// Whether the probe sent at `bNs` follows the one sent at `aNs` without a
/// break: same session (-1 is no session, never consecutive) and less than
/// 1.5 of a's session's intervals later.
@inlinable
public func isConsecutive(_ aNs: Nanoseconds, session aSession: Int64, _ bNs: Nanoseconds, session bSession: Int64,
                          intervalNs: Nanoseconds) -> Bool {
    aSession >= 0 && aSession == bSession && 2 * (bNs - aNs) < 3 * intervalNs
}

/// Finds the lost runs of probes given in send order.
public struct LostRunBuilder: Sendable {
    @usableFromInline var open: LostRun?
    @usableFromInline var previous: (sentNs: Nanoseconds, session: Int64, intervalNs: Nanoseconds)?

    public init() {}

    /// The next probe: its send time, its session (any key, -1 for none),
    /// that session's interval and whether it was lost. Returns the run it
    /// ends, if any.
    @inlinable @inline(__always)
    public mutating func add(sentNs: Nanoseconds, session: Int64, intervalNs: Nanoseconds, lost: Bool) -> LostRun? {
        var closed: LostRun?
        if var run = open, let p = previous {
            if isConsecutive(p.sentNs, session: p.session, sentNs, session: session, intervalNs: p.intervalNs) {
                if lost {
                    run.lastNs = sentNs
                    run.count += 1
                    open = run
                    previous = (sentNs, session, intervalNs)
                    return nil
                }
                run.endNs = sentNs
            } else {
                run.endNs = p.sentNs + p.intervalNs
            }
            closed = run
            open = nil
        }
        if lost { open = LostRun(startNs: sentNs, lastNs: sentNs, count: 1, endNs: nil) }
        previous = (sentNs, session, intervalNs)
        return closed
    }

    /// The run that reaches the last probe added (its endNs is nil), if any.
    public var openRun: LostRun? { open }
}

/// A stretch of one target's probes, in time order, with its lost runs: a
/// run of raw probes or a summarized hour. Sessions are ids (-1: none).
public struct RunStretch: Sendable, Hashable {
    public var firstNs: Nanoseconds, firstSession: Int64
    public var lastNs: Nanoseconds, lastSession: Int64
    public var runs: [LostRun]
    public init(firstNs: Nanoseconds, firstSession: Int64, lastNs: Nanoseconds, lastSession: Int64, runs: [LostRun]) {
        self.firstNs = firstNs; self.firstSession = firstSession
        self.lastNs = lastNs; self.lastSession = lastSession; self.runs = runs
    }
}

/// Every lost run of the stretches taken together, each with its end: the
/// runs inside a stretch are final; a run reaching a stretch's last probe
/// joins the run that starts the next stretch when their probes are
/// consecutive. `sessions` give the intervals of the stretches' session ids.
public func stitchLostRuns(_ stretches: [RunStretch], sessions: [SessionRecord]) -> [LostRun] {
    var intervals: [Int64: Nanoseconds] = [:]
    for session in sessions { intervals[session.id] = session.intervalNs }
    func interval(_ session: Int64) -> Nanoseconds { session >= 0 ? intervals[session] ?? 0 : 0 }

    var result: [LostRun] = []
    // The run that reached the previous stretch's last probe, and its session.
    var open: (run: LostRun, session: Int64)?
    var previous: (ns: Nanoseconds, session: Int64)?
    for stretch in stretches {
        var runs = stretch.runs[...]
        if let (o, openSession) = open, let p = previous {
            let joined = isConsecutive(p.ns, session: p.session, stretch.firstNs, session: stretch.firstSession,
                                       intervalNs: interval(p.session))
            if joined, let r = runs.first, r.startNs == stretch.firstNs {
                runs.removeFirst()
                let merged = LostRun(startNs: o.startNs, lastNs: r.lastNs, count: o.count + r.count, endNs: r.endNs)
                if merged.endNs != nil { result.append(merged); open = nil } else { open = (merged, stretch.lastSession) }
            } else {
                var ended = o
                ended.endNs = joined ? stretch.firstNs : o.lastNs + interval(openSession)
                result.append(ended)
                open = nil
            }
        }
        for r in runs {
            if r.endNs != nil { result.append(r) } else { open = (r, stretch.lastSession) }
        }
        previous = (stretch.lastNs, stretch.lastSession)
    }
    if let (o, openSession) = open {
        var ended = o
        ended.endNs = o.lastNs + interval(openSession)
        result.append(ended)
    }
    return result
}
