// What a report says, as plain values: makeReport builds them, render prints
// them. Times are Unix nanoseconds; round-trip times are milliseconds.
import Foundation
import Store

public struct ReportOptions: Sendable, Equatable {
    /// Window start (inclusive), Unix nanoseconds.
    public var since: Nanoseconds
    /// Window end (exclusive), Unix nanoseconds.
    public var until: Nanoseconds
    /// Epoch length; nil gives the whole-window summary only.
    public var epochNs: Nanoseconds?
    /// A reply later than this is late, and late is lost.
    public var timeoutNs: Nanoseconds
    /// Fewest consecutive lost probes that make an outage.
    public var outageMin: Int
    /// Target names or hosts to report; empty reports all.
    public var targets: [String]
    /// Where epochs begin (EpochGrid.swift): the local calendar of this zone
    /// (days from local midnight, Monday weeks); nil aligns them to UTC
    /// multiples of their width, as `--utc` asks.
    public var timeZone: TimeZone?

    public init(
        since: Nanoseconds, until: Nanoseconds, epochNs: Nanoseconds? = nil,
        timeoutNs: Nanoseconds = 2_000_000_000, outageMin: Int = 3, targets: [String] = [],
        timeZone: TimeZone? = nil
    ) {
        self.since = since; self.until = until; self.epochNs = epochNs
        self.timeoutNs = timeoutNs; self.outageMin = outageMin; self.targets = targets
        self.timeZone = timeZone
    }
}

public struct Report: Sendable, Equatable {
    public var since: Nanoseconds
    public var until: Nanoseconds
    public var epochNs: Nanoseconds?
    public var timeoutNs: Nanoseconds
    public var targets: [TargetReport]
    /// Some percentile came from hourly summaries' histograms (within 1 %
    /// of the exact value) rather than from every probe's RTT.
    public var percentilesApproximate = false
    public init(since: Nanoseconds, until: Nanoseconds, epochNs: Nanoseconds?, timeoutNs: Nanoseconds, targets: [TargetReport]) {
        self.since = since; self.until = until; self.epochNs = epochNs
        self.timeoutNs = timeoutNs; self.targets = targets
    }
}

public struct TargetReport: Sendable, Equatable {
    /// The database (vantage point) it was measured from, when a report puts
    /// several side by side; nil for a report of one database.
    public var vantage: String?
    public var target: String
    public var host: String
    /// Addresses in effect during the window, in the order they took effect.
    public var addresses: [String]
    /// How the latest session of the window probed it (--source,
    /// --interface, --tos); nil where not set.
    public var source: String?
    public var interface: String?
    public var tos: Int?
    /// The whole window.
    public var summary: Summary
    /// Every epoch of the window, even those without data; empty without an epoch length.
    public var epochs: [Epoch]
    public var outages: [Outage]
    /// The window's path, hop by hop (TTL 1 first, the target itself last;
    /// PathReport.swift); empty without path rounds.
    public var path: [PathHop] = []
    public init(vantage: String? = nil, target: String, host: String, addresses: [String], summary: Summary, epochs: [Epoch], outages: [Outage]) {
        self.vantage = vantage; self.target = target; self.host = host; self.addresses = addresses
        self.summary = summary; self.epochs = epochs; self.outages = outages
    }

    /// Takes source, interface and TOS from a session_target row.
    mutating func probed(as row: SessionTargetRecord?) {
        source = row?.source; interface = row?.interface; tos = row?.tos
    }
}

public struct Epoch: Sendable, Equatable {
    public var start: Nanoseconds
    public var end: Nanoseconds
    public var summary: Summary
    /// The epoch's path rounds, hop by hop (the target last): what a view's
    /// hop strip colours. Empty without path rounds in the epoch.
    public var path: [PathHopCounts] = []
    public init(start: Nanoseconds, end: Nanoseconds, summary: Summary) {
        self.start = start; self.end = end; self.summary = summary
    }
}

/// Counts for one target over one period. sent = received + lost + unknown.
public struct Summary: Sendable, Equatable {
    public var sent = 0
    public var received = 0
    /// Includes late probes and probes with errors.
    public var lost = 0
    /// Replies that came after the timeout (also counted in lost).
    public var late = 0
    /// Echo replies beyond a probe's first.
    public var duplicates = 0
    /// Lost probes with a send error or an ICMP error.
    public var errors = 0
    public var errorKinds: [String: Int] = [:]
    /// Probes without reply whose timeout ends after the recorder's last sign of life.
    public var unknown = 0
    /// lost / (sent - unknown) * 100; nil when nothing could be judged.
    public var lossPct: Double?
    /// Fraction of the period a recorder was probing this target, in [0, 1].
    public var coverage: Double = 0
    public var rtt = RTTStats()
    /// Where the period's loss begins (Store's PathJudge); nil when nothing
    /// was lost, `unknown` when no path round saw the loss.
    public var lossWhere: PathWhere?
    public init() {}
    /// Nothing was recorded: "no data", never loss.
    public var hasNoData: Bool { sent == 0 }
}

/// Round-trip times of received probes, milliseconds; nil where undefined.
public struct RTTStats: Sendable, Equatable {
    public var min: Double?
    public var avg: Double?
    public var p50: Double?
    public var p90: Double?
    public var p99: Double?
    public var max: Double?
    /// Population standard deviation.
    public var stddev: Double?
    /// Mean |r_i - r_(i-1)| over consecutive received probes (RFC 3550 D, unsmoothed).
    public var jitter: Double?
    public init(min: Double? = nil, avg: Double? = nil, p50: Double? = nil, p90: Double? = nil,
                p99: Double? = nil, max: Double? = nil, stddev: Double? = nil, jitter: Double? = nil) {
        self.min = min; self.avg = avg; self.p50 = p50; self.p90 = p90
        self.p99 = p99; self.max = max; self.stddev = stddev; self.jitter = jitter
    }
}

/// A run of at least outageMin consecutive lost probes.
public struct Outage: Sendable, Equatable {
    /// Send time of the first lost probe.
    public var start: Nanoseconds
    /// Send time of the next (answered) probe, else last lost send time + one interval.
    public var end: Nanoseconds
    public var lost: Int
    /// Where its loss begins (Store's PathJudge over its rounds).
    public var lossWhere = PathWhere.unknown
    public var seconds: Double { Double(end - start) / 1e9 }
    public init(start: Nanoseconds, end: Nanoseconds, lost: Int) {
        self.start = start; self.end = end; self.lost = lost
    }
}

/// One hop of a target's path over a period (the last one is the target):
/// Store's PathHopFigures with round-trip times in milliseconds.
public struct PathHop: Sendable, Equatable {
    public var ttl: Int
    public var isTarget: Bool
    /// The most frequent answering address; nil for a hop that never answered.
    public var address: String?
    /// Every answering address, in the order each first answered.
    public var addresses: [String]
    public var sent: Int
    public var answered: Int
    /// Unanswered / sent * 100.
    public var lossPct: Double?
    /// Unanswered probes whose every later probe of the round went unanswered too, / sent * 100.
    public var forwardLossPct: Double?
    public var rtt: RTTStats
    public init(ttl: Int, isTarget: Bool, address: String?, addresses: [String], sent: Int, answered: Int,
                lossPct: Double?, forwardLossPct: Double?, rtt: RTTStats) {
        self.ttl = ttl; self.isTarget = isTarget; self.address = address; self.addresses = addresses
        self.sent = sent; self.answered = answered; self.lossPct = lossPct; self.forwardLossPct = forwardLossPct
        self.rtt = rtt
    }
}

/// A mistake the user can fix; its description is one sentence saying what
/// is wrong and what to do.
public struct ReportError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
