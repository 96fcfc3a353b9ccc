import Foundation
import Store
import Testing
@testable import Reports

@Test(arguments: [
    ("250ms", Int64(250_000_000)), ("1s", 1_000_000_000), ("1.5s", 1_500_000_000), ("5m", 300_000_000_000),
    ("24h", 86_400_000_000_000), ("7d", 604_800_000_000_000), ("2w", 1_209_600_000_000_000),
    ("1h30m", 5_400_000_000_000), ("100us", 100_000), ("0.25ms", 250_000),
])
func goodDurations(text: String, ns: Int64) throws {
    #expect(try parseDuration(text) == ns)
}

@Test(arguments: ["", "5", "s", "abc", "1x", "-1s", "0s", "0ms", "1.s", "1h30", "1..5s", "1e3s", "99999999999w"])
func badDurations(text: String) {
    #expect(throws: ReportError.self) { try parseDuration(text) }
}

private let utc = TimeZone(identifier: "UTC")!
private let berlin = TimeZone(identifier: "Europe/Berlin")!
private let newYork = TimeZone(identifier: "America/New_York")!

@Test func timesWithoutAZoneAreLocal() throws {
    // Berlin is UTC+1 in November: local midnight is 23:00 UTC the day before.
    #expect(try parseTime("2026-11-24", timeZone: berlin) == 1_795_474_800 * second)
    #expect(try parseTime("2026-11-24T18:00", timeZone: utc) == 1_795_543_200 * second)
    #expect(try parseTime("2026-11-24 18:00:05", timeZone: newYork) == 1_795_561_205 * second)
    #expect(try parseTime("2026-11-24T18:00:05.123", timeZone: utc) == 1_795_543_205 * second + 123 * millisecond)
}

@Test func aGivenZoneWinsOverTheLocalOne() throws {
    #expect(try parseTime("2026-11-24T18:00:05.123Z", timeZone: berlin) == 1_795_543_205 * second + 123 * millisecond)
    #expect(try parseTime("2026-11-24T19:00:05+01:00", timeZone: newYork) == 1_795_543_205 * second)
    #expect(try parseTime("2026-11-24T13:00-0500", timeZone: berlin) == 1_795_543_200 * second)
}

@Test(arguments: ["", "yesterday", "24.11.2026", "2026-13-01", "2026-02-30", "2026-11-24T25:00", "2026-11-24T18",
                  "2026-11-24T18:00:05.", "2026-11-24T18:00+1", "2026-11-24T18:00:61", "2026-11-24x", "2026-11-24T18:00Zulu"])
func badTimes(text: String) {
    #expect(throws: ReportError.self) { try parseTime(text, timeZone: utc) }
}

@Test func windowDefaultsToTheLast24Hours() throws {
    let window = try resolveWindow(last: nil, since: nil, until: nil, now: t0, timeZone: utc)
    #expect(window.since == t0 - 24 * 60 * minute && window.until == t0)
}

@Test func windowFromLastAndUntilOrFromSinceAndUntil() throws {
    let last = try resolveWindow(last: "1h", since: nil, until: "2026-11-24T18:00Z", now: t0, timeZone: utc)
    #expect(last.since == (1_795_543_200 - 3600) * second && last.until == 1_795_543_200 * second)
    let both = try resolveWindow(last: nil, since: "2026-11-24", until: "2026-11-24T18:00", now: t0, timeZone: utc)
    #expect(both.since == (1_795_543_200 - 18 * 3600) * second && both.until == 1_795_543_200 * second)
    let sinceOnly = try resolveWindow(last: nil, since: "2026-11-25T20:00Z", until: nil, now: t0, timeZone: utc)
    #expect(sinceOnly.since == t0 - 60 * minute && sinceOnly.until == t0)
}

@Test func windowMistakesAreOneSentenceErrors() {
    #expect(throws: ReportError.self) {
        try resolveWindow(last: "1h", since: "2026-11-24", until: nil, now: t0, timeZone: utc)
    }
    #expect(throws: ReportError.self) {
        try resolveWindow(last: nil, since: "2026-11-25T22:00Z", until: "2026-11-25T21:00Z", now: t0, timeZone: utc)
    }
    #expect(throws: ReportError.self) {
        try resolveWindow(last: "soon", since: nil, until: nil, now: t0, timeZone: utc)
    }
    // An input that parses is a failure here, not a pass.
    let error = #expect(throws: ReportError.self) { try parseDuration("5") }
    #expect(error?.description.hasSuffix(".") == true)
    #expect(error?.description.contains("\n") == false)
}
