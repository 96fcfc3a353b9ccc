// Where epochs begin in a time zone: local days (23 or 25 hours at the
// daylight saving changes), Monday weeks, hours at local :00 in a half-hour
// zone, and UTC multiples when no zone is given.
import Foundation
import Store
import Testing
@testable import Reports

private let hour: Nanoseconds = 3_600 * second
private let day: Nanoseconds = 24 * hour

/// Unix nanoseconds of an ISO 8601 time with its zone ("2026-10-31T04:00:00Z").
private func utc(_ text: String) -> Nanoseconds {
    try! parseTime(text, timeZone: TimeZone(identifier: "UTC")!)
}

private func starts(_ periods: [(Nanoseconds, Nanoseconds)]) -> [String] {
    periods.map { isoUTC($0.0) }
}

@Suite struct EpochGridTests {
    let newYork = TimeZone(identifier: "America/New_York")!
    let kolkata = TimeZone(identifier: "Asia/Kolkata")!

    @Test func aDayIsALocalCalendarDayAcrossTheEndOfDaylightSavingTime() throws {
        let since = try parseTime("2026-10-31", timeZone: newYork)
        let until = try parseTime("2026-11-03", timeZone: newYork)
        let periods = epochPeriods(since: since, until: until, epochNs: day, timeZone: newYork)
        #expect(starts(periods) == ["2026-10-31T04:00:00.000Z", "2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z"])
        // November 1 has 25 hours; the days around it 24.
        #expect(periods.map { ($0.1 - $0.0) / hour } == [24, 25, 24])
        #expect(periods.last!.1 == until)
    }

    @Test func aDayHas23HoursWhenDaylightSavingTimeBegins() throws {
        let since = try parseTime("2026-03-07", timeZone: newYork)
        let until = try parseTime("2026-03-10", timeZone: newYork)
        let periods = epochPeriods(since: since, until: until, epochNs: day, timeZone: newYork)
        #expect(periods.map { ($0.1 - $0.0) / hour } == [24, 23, 24])
    }

    @Test func hoursStartAtLocalWholeHoursInAHalfHourZone() throws {
        let since = try parseTime("2026-11-28T00:10", timeZone: kolkata)
        let until = try parseTime("2026-11-28T03:00", timeZone: kolkata)
        let periods = epochPeriods(since: since, until: until, epochNs: hour, timeZone: kolkata)
        // The first epoch is cut to the window; the others start at :30 UTC.
        #expect(starts(periods) == ["2026-11-27T18:40:00.000Z", "2026-11-27T19:30:00.000Z", "2026-11-27T20:30:00.000Z"])
        #expect(periods[0].1 == utc("2026-11-27T19:30:00Z"))
    }

    @Test func hoursFollowTheClockOnTheDaysItChanges() throws {
        // 00:00 to 04:00 local on November 1 is five hours: 01:00 happens twice.
        let fall = epochPeriods(since: try parseTime("2026-11-01", timeZone: newYork),
                                until: try parseTime("2026-11-01T04:00", timeZone: newYork), epochNs: hour, timeZone: newYork)
        #expect(fall.count == 5)
        #expect(fall.allSatisfy { $0.1 - $0.0 == hour })
        // On March 8 there is no 02:00: 00:00 to 05:00 local is four hours.
        let spring = epochPeriods(since: try parseTime("2026-03-08", timeZone: newYork),
                                  until: try parseTime("2026-03-08T05:00", timeZone: newYork), epochNs: hour, timeZone: newYork)
        #expect(starts(spring) == ["2026-03-08T05:00:00.000Z", "2026-03-08T06:00:00.000Z",
                                   "2026-03-08T07:00:00.000Z", "2026-03-08T08:00:00.000Z"])
    }

    @Test func weeksStartOnMonday() throws {
        let since = try parseTime("2026-11-25", timeZone: newYork)   // a Wednesday
        let until = try parseTime("2026-12-10", timeZone: newYork)
        let periods = epochPeriods(since: since, until: until, epochNs: 7 * day, timeZone: newYork)
        #expect(starts(periods) == ["2026-11-25T05:00:00.000Z", "2026-11-30T05:00:00.000Z", "2026-12-07T05:00:00.000Z"])
    }

    @Test func aDayThatSkipsMidnightStartsWhenTheClockJumps() throws {
        // Chile moves its clocks from 00:00 to 01:00 on 2026-09-06.
        let santiago = TimeZone(identifier: "America/Santiago")!
        let periods = epochPeriods(since: try parseTime("2026-09-05", timeZone: santiago),
                                   until: try parseTime("2026-09-08", timeZone: santiago), epochNs: day, timeZone: santiago)
        #expect(starts(periods) == ["2026-09-05T04:00:00.000Z", "2026-09-06T04:00:00.000Z", "2026-09-07T03:00:00.000Z"])
        #expect(periods.map { ($0.1 - $0.0) / hour } == [24, 23, 24])
    }

    @Test func epochsThatDoNotDivideADayRestartAtEachLocalMidnight() throws {
        let since = try parseTime("2026-11-27T23:00", timeZone: newYork)
        let until = try parseTime("2026-11-28T01:00", timeZone: newYork)
        let periods = epochPeriods(since: since, until: until, epochNs: 7 * minute, timeZone: newYork)
        // From midnight, 7-minute epochs start at 22:59 (cut to 23:00 by the
        // window), 23:06, ..., 23:55; that one ends at midnight after 5 minutes.
        #expect(periods[0].1 == since + 6 * minute)
        #expect(periods[8].1 - periods[8].0 == 5 * minute)
        let midnight = try parseTime("2026-11-28", timeZone: newYork)
        #expect(periods[9].0 == midnight)
        #expect(zip(periods, periods.dropFirst()).allSatisfy { $0.1 == $1.0 })
    }

    @Test func withoutAZoneEpochsAreUTCMultiples() {
        let since = utc("2026-11-28T00:10:00Z"), until = utc("2026-11-28T03:00:00Z")
        let periods = epochPeriods(since: since, until: until, epochNs: hour, timeZone: nil)
        #expect(starts(periods) == ["2026-11-28T00:10:00.000Z", "2026-11-28T01:00:00.000Z", "2026-11-28T02:00:00.000Z"])
        // Multiples since the Unix epoch, whatever the width.
        let odd = epochPeriods(since: since, until: until, epochNs: 7 * minute, timeZone: nil)
        #expect(odd.dropFirst().allSatisfy { $0.0 % (7 * minute) == 0 })
    }

    @Test func aYearOfMinutesIsOneContiguousGrid() {
        // 525,600 epochs: the grid is arithmetic between midnights, not a
        // calendar call per epoch.
        let periods = epochPeriods(since: utc("2026-01-01T00:00:00Z"), until: utc("2027-01-01T00:00:00Z"),
                                   epochNs: minute, timeZone: newYork)
        #expect(periods.count == 525_600)
        #expect(zip(periods, periods.dropFirst()).allSatisfy { $0.1 == $1.0 })
    }
}
