// What `pingem watch` shows, as plain values: one snapshot per second, built
// by makeReport from the last hour of the database, so the live numbers are
// the numbers `pingem report` gives for the same window.
import Store

public struct WatchSnapshot: Sendable, Equatable {
    /// When the snapshot was taken, Unix nanoseconds (the windows end here).
    public var now: Nanoseconds
    public var targets: [WatchTarget]
    public init(now: Nanoseconds, targets: [WatchTarget]) {
        self.now = now; self.targets = targets
    }
}

public struct WatchTarget: Sendable, Equatable {
    public var label: String
    /// RTT of the latest judged probe, milliseconds; nil when it was lost or there is none.
    public var lastRTT: Double?
    /// The latest judged probe was lost.
    public var lastLost: Bool
    /// The last minute.
    public var minute: Summary
    /// The last hour.
    public var hour: Summary
    /// One-minute epochs of the last hour, oldest first, aligned to local minutes.
    public var epochs: [Epoch]
    /// Send time of the first lost probe of the outage the latest probes are
    /// in; nil when the target is not in an outage (or is no longer probed).
    public var outageSince: Nanoseconds?
    /// Where that outage's loss begins (the report's judge over the hour's
    /// path rounds); nil when no path round saw it.
    public var outageWhere: PathWhere?
    public init(label: String, lastRTT: Double? = nil, lastLost: Bool = false, minute: Summary = Summary(),
                hour: Summary = Summary(), epochs: [Epoch] = [], outageSince: Nanoseconds? = nil,
                outageWhere: PathWhere? = nil) {
        self.label = label; self.lastRTT = lastRTT; self.lastLost = lastLost; self.minute = minute
        self.hour = hour; self.epochs = epochs; self.outageSince = outageSince; self.outageWhere = outageWhere
    }
}

public enum Watch {
    public static let minuteNs: Nanoseconds = 60_000_000_000
    public static let hourNs: Nanoseconds = 3_600_000_000_000

    /// The report options of the hour ending at `now`: what to load each second.
    public static func hourOptions(now: Nanoseconds, timeoutNs: Nanoseconds = 2_000_000_000,
                                   outageMin: Int = 3, targets: [String] = []) -> ReportOptions {
        ReportOptions(since: now - hourNs, until: now + 1, epochNs: minuteNs,
                      timeoutNs: timeoutNs, outageMin: outageMin, targets: targets, timeZone: .current)
    }

    /// The snapshot at `now` of `input`, loaded with `hourOptions(now:...)`
    /// (and its path probes, for where an outage's loss begins).
    /// Targets without a probe in the hour are left out: they are history, not live.
    public static func snapshot(_ input: ReportInput, _ hour: ReportOptions) throws -> WatchSnapshot {
        let now = hour.until - 1
        let (reports, classified) = try makeReports(input, hour, epochWidths: [minuteNs])
        var minuteOptions = hour
        minuteOptions.since = max(hour.since, now - minuteNs)
        minuteOptions.epochNs = nil
        let minute = try makeReport(input, minuteOptions)
        // A probe sent longer ago than this is not "the latest": the recorder
        // stopped, and a stopped recorder is no data, not an outage.
        let interval = input.sessions.map(\.intervalNs).max() ?? 1_000_000_000
        let stale = hour.timeoutNs + 3 * interval

        var targets: [WatchTarget] = []
        for (t, report) in reports[0].targets.enumerated() where report.summary.sent > 0 {
            let probes = classified[t]
            var target = WatchTarget(label: report.target, minute: minute.targets[t].summary,
                                     hour: report.summary, epochs: report.epochs)
            // Probes still within their timeout are neither received nor lost yet.
            if let judged = probes.last(where: { $0.verdict != .unknown }) {
                if judged.verdict == .received {
                    target.lastRTT = Double(judged.rttNs) / 1e6
                } else {
                    target.lastLost = true
                    if let outage = report.outages.last, outage.start <= judged.sentNs, judged.sentNs < outage.end,
                       let latest = probes.last, now - latest.sentNs <= stale {
                        target.outageSince = outage.start
                        if outage.lossWhere.segment != .unknown { target.outageWhere = outage.lossWhere }
                    }
                }
            }
            targets.append(target)
        }
        return WatchSnapshot(now: now, targets: targets)
    }
}
