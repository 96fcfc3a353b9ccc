// Days in the user's own calendar, as a new user meets them: the zone comes
// from TZ, zone-less times and epochs follow it, --utc goes back to UTC, and
// the table, CSV and JSON agree (JSON and CSV times stay UTC).
import Foundation
import Store
import Testing
import TestSupport

@Suite struct LocalDaysCLITests {
    let folder = TemporaryFolder()

    /// One target probed every 10 minutes from 2026-10-30 to 2026-11-04 UTC,
    /// across New York's end of daylight saving time (2026-11-01 06:00Z).
    func history() throws -> String {
        let path = folder.file("days.db")
        let db = try Database(path: path, mode: .readWrite)
        let target = try db.target(name: "router", host: "198.18.0.1")
        let start: Int64 = 1_793_318_400 * 1_000_000_000  // 2026-10-30T00:00Z
        let step: Int64 = 600 * 1_000_000_000
        let session = try db.beginTestSession(intervalNs: step, startedNs: start, targets: [target.id])
        var batch = WriteBatch()
        batch.addresses = [AddressRecord(targetID: target.id, sinceNs: start, address: "198.18.0.1")]
        for k in 0..<(5 * 144) as Range<Int64> {
            batch.probes.append(ProbeRecord(sentNs: start + k * step + 1_000, targetID: target.id, rttNs: 20_000_000))
        }
        batch.heartbeatNs = start + 5 * 144 * step
        try db.write(batch, session: session)
        try db.endSession(session, stoppedNs: start + 5 * 144 * step)
        return path
    }

    func json(_ r: CommandResult) throws -> [String] {
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let targets = try #require(object["targets"] as? [[String: Any]])
        let epochs = try #require(targets.first?["epochs"] as? [[String: Any]])
        return epochs.compactMap { $0["start"] as? String }
    }

    @Test func newYorkDaysAreCalendarDaysAcrossTheEndOfDaylightSavingTime() throws {
        let db = try history()
        let ny = ["TZ": "America/New_York"]
        let args = ["report", "--db", db, "--since", "2026-10-31", "--until", "2026-11-03", "--epoch", "1d"]
        // JSON: UTC times of local midnights; November 1 has 25 hours.
        let starts = try json(try pingem(args + ["--format", "json"], environment: ny))
        #expect(starts == ["2026-10-31T04:00:00.000Z", "2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z"])
        // CSV: the same bounds, and 150 probes in the long day (25 h at 10 min).
        let csv = try pingem(args + ["--format", "csv"], environment: ny)
        #expect(csv.status == 0, "\(csv.stderr)")
        let rows = csv.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
        #expect(rows.map { String($0[2]) } == starts)
        #expect(rows.map { String($0[3]) } == ["2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z", "2026-11-03T05:00:00.000Z"])
        #expect(rows.map { Int($0[4]) } == [144, 150, 144])
        // The table: local midnights, in the zone it names.
        let table = try pingem(args, environment: ny)
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("America/New_York"))
        for day in ["2026-10-31 00:00", "2026-11-01 00:00", "2026-11-02 00:00"] {
            #expect(table.stdout.contains("  \(day)  "), "\(day) in\n\(table.stdout)")
        }
    }

    @Test func kolkataHoursStartAtHalfPastInUTC() throws {
        let db = try history()
        let args = ["report", "--db", db, "--since", "2026-11-02T10:00", "--until", "2026-11-02T13:00", "--epoch", "1h"]
        let kolkata = ["TZ": "Asia/Kolkata"]
        let starts = try json(try pingem(args + ["--format", "json"], environment: kolkata))
        #expect(starts == ["2026-11-02T04:30:00.000Z", "2026-11-02T05:30:00.000Z", "2026-11-02T06:30:00.000Z"])
        let csv = try pingem(args + ["--format", "csv"], environment: kolkata)
        #expect(csv.stdout.split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[2]) } == starts)
        let table = try pingem(args, environment: kolkata)
        #expect(table.stdout.contains("Asia/Kolkata (UTC+05:30)"))
        for hour in ["10:00", "11:00", "12:00"] { #expect(table.stdout.contains("  \(hour)  "), "\(hour) in\n\(table.stdout)") }
    }

    @Test func utcReadsZoneLessTimesAsUTCAndAlignsEpochsToUTC() throws {
        let db = try history()
        let args = ["report", "--db", db, "--since", "2026-10-31", "--until", "2026-11-03", "--epoch", "1d", "--utc"]
        let ny = ["TZ": "America/New_York"]
        let starts = try json(try pingem(args + ["--format", "json"], environment: ny))
        #expect(starts == ["2026-10-31T00:00:00.000Z", "2026-11-01T00:00:00.000Z", "2026-11-02T00:00:00.000Z"])
        let csv = try pingem(args + ["--format", "csv"], environment: ny)
        #expect(csv.stdout.split(separator: "\n").dropFirst().map { Int($0.split(separator: ",")[4]) } == [144, 144, 144])
        let table = try pingem(args, environment: ny)
        #expect(table.stdout.contains("Window 2026-10-31 00:00:00 → 2026-11-03 00:00:00 UTC"), "\(table.stdout)")
        // A week starts on Monday in either calendar: 2026-11-02 is one.
        let weeks = try json(try pingem(["report", "--db", db, "--since", "2026-10-30", "--until", "2026-11-04",
                                         "--epoch", "1w", "--format", "json"], environment: ny))
        #expect(weeks == ["2026-10-30T04:00:00.000Z", "2026-11-02T05:00:00.000Z"])
    }
}
