// Where epochs begin: the one rule every view (report, export, serve's page
// and its chosen epoch, watch) cuts a window by.
//
// In a time zone (the default: the zone pingem runs in, `TZ`), epochs follow
// the local calendar as a person reading the table expects:
//   * an epoch of a whole number of days is that many calendar days from
//     local midnight, so `1d` is 23 or 25 hours long on the days daylight
//     saving time changes; `1w` (and any multiple of 7 days) starts on Monday;
//   * a shorter epoch is aligned to multiples of itself from each local
//     midnight (hours start at local :00, also at UTC+05:30), and the last
//     epoch of a day ends at the next midnight when the width does not divide
//     the day;
//   * a longer epoch that is not whole days is aligned to multiples of itself
//     from the local midnight that starts the window's first day.
// In UTC (`--utc`, or `timeZone` nil) epochs are multiples of their width
// since the Unix epoch, as before local days existed.
//
// Whole UTC hours (the hourly summaries) lie inside one local epoch of an
// hour or more whenever the zone's offset is a whole number of hours; in a
// half-hour zone every local hour straddles two summaries, so hour epochs are
// read from raw probes (days and weeks only at their two edges).
import Foundation
import Store

private let nsPerSecond: Nanoseconds = 1_000_000_000
private let nsPerDay: Nanoseconds = 86_400 * 1_000_000_000

/// The epochs of [since, until) of width `epochNs`, each cut to the window.
public func epochPeriods(
    since: Nanoseconds, until: Nanoseconds, epochNs: Nanoseconds, timeZone: TimeZone?
) -> [(Nanoseconds, Nanoseconds)] {
    var periods: [(Nanoseconds, Nanoseconds)] = []
    func add(_ start: Nanoseconds, _ end: Nanoseconds) {
        let s = max(start, since), e = min(end, until)
        if s < e { periods.append((s, e)) }
    }
    guard let timeZone else {
        var start = floorDivide(since, epochNs) * epochNs
        while start < until {
            add(start, start + epochNs)
            start += epochNs
        }
        return periods
    }
    let calendar = LocalDays(timeZone)
    var day = calendar.day(containing: since)
    if epochNs % nsPerDay == 0 {
        let days = epochNs / nsPerDay
        // Day 0 (1970-01-01) was a Thursday: day 4 is the Monday weeks start on.
        let anchor: Int64 = days % 7 == 0 ? 4 : 0
        day -= positiveModulo(day - anchor, days)
        var start = calendar.midnight(day)
        while start < until {
            let end = calendar.midnight(day + days)
            add(start, end)
            start = end
            day += days
        }
    } else if epochNs < nsPerDay {
        var midnight = calendar.midnight(day)
        while midnight < until {
            let next = calendar.midnight(day + 1)
            // Only the epochs that meet the window: a day has up to 86,400 s of them.
            var start = midnight
            if since > midnight { start += (since - midnight) / epochNs * epochNs }
            while start < next && start < until {
                add(start, min(start + epochNs, next))
                start += epochNs
            }
            midnight = next
            day += 1
        }
    } else {
        var start = calendar.midnight(day)
        while start < until {
            add(start, start + epochNs)
            start += epochNs
        }
    }
    return periods
}

/// A report's epochs by their starts, to ask which epoch an instant is in.
struct EpochStarts {
    let starts: [Nanoseconds]
    init(_ periods: [(Nanoseconds, Nanoseconds)]) { starts = periods.map(\.0) }

    /// The index of the last epoch starting at or before `instant` (-1: none).
    func epoch(of instant: Nanoseconds) -> Int {
        var low = 0, high = starts.count
        while low < high {
            let mid = (low + high) / 2
            if starts[mid] <= instant { low = mid + 1 } else { high = mid }
        }
        return low - 1
    }
}

private func positiveModulo(_ a: Int64, _ b: Int64) -> Int64 {
    let r = a % b
    return r < 0 ? r + b : r
}

/// Local calendar days of a time zone, as day numbers since 1970-01-01 local.
struct LocalDays {
    let timeZone: TimeZone
    init(_ timeZone: TimeZone) { self.timeZone = timeZone }

    /// Seconds east of UTC in effect at an instant.
    func offsetNs(_ instant: Nanoseconds) -> Nanoseconds {
        Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(floorDivide(instant, nsPerSecond))))) * nsPerSecond
    }

    /// The local day an instant falls on.
    func day(containing instant: Nanoseconds) -> Int64 {
        floorDivide(instant + offsetNs(instant), nsPerDay)
    }

    /// The first instant of local day `day`: its midnight, or, where the
    /// clocks skip midnight (a daylight saving change at 00:00), the moment
    /// they skip to; where midnight happens twice, the first of the two.
    func midnight(_ day: Int64) -> Nanoseconds {
        let local = day * nsPerDay
        var instant = local - offsetNs(local - offsetNs(local))
        // Midnight twice (clocks set back across it): the earlier one.
        let earlier = local - offsetNs(instant - 2 * 3_600 * nsPerSecond)
        if earlier < instant && earlier + offsetNs(earlier) == local { instant = earlier }
        if instant + offsetNs(instant) == local { return instant }
        // No midnight: the day starts at the change, the first instant whose
        // local time is on this day.
        let from = Date(timeIntervalSince1970: Double(floorDivide(instant, nsPerSecond) - 86_400))
        if let change = timeZone.nextDaylightSavingTimeTransition(after: from) {
            let ns = Int64(change.timeIntervalSince1970.rounded()) * nsPerSecond
            if self.day(containing: ns) == day { return ns }
        }
        return instant
    }
}
