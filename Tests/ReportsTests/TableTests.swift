import Foundation
import Store
import Testing
@testable import Reports

private let utc = TimeZone(identifier: "UTC")!

private func tableReport() throws -> Report {
    var report = try contractReport()
    var silent = report.targets[0]
    silent.target = "nas"
    silent.host = "nas.lan"
    silent.addresses = []
    silent.summary = Summary()
    silent.epochs = silent.epochs.map { Epoch(start: $0.start, end: $0.end, summary: Summary()) }
    silent.outages = []
    report.targets.append(silent)
    return report
}

@Test func tableWithoutColorHasNoEscapeCodes() throws {
    let table = render(try tableReport(), as: .table, color: false, timeZone: utc)
    #expect(!table.contains("\u{1B}"))
    #expect(table.contains("Window 2026-11-25 21:00:00 → 2026-11-25 21:00:04 UTC (UTC+00:00), timeout 2 s, epochs of 2 s"))
    #expect(table.contains("outage 21:00:01 → 21:00:03, 2 probes, 2.0 s"))
    #expect(table.contains("errors: ENETUNREACH 1"))
    let lines = table.split(separator: "\n")
    let header = try #require(lines.first { $0.hasPrefix("TARGET") })
    #expect(header.contains("LOSS%") && header.contains("P99 ms") && header.contains("JITTER ms"))
    let routerRow = try #require(lines.first { $0.hasPrefix("router") })
    #expect(routerRow.split(separator: " ").map(String.init)
            == ["router", "10.0.0.1", "4", "50.00", "2", "0", "1", "1", "0", "100%", "10.0", "10.0", "20.0", "20.0", "20.0", "10.0"])
    let nasRow = try #require(lines.first { $0.hasPrefix("nas") })
    #expect(nasRow.contains("no data"))
    // Columns line up: the header and every row put SENT's last character in the same place.
    let sentEnd = try #require(header.range(of: "SENT")).upperBound.utf16Offset(in: header)
    #expect(Array(routerRow.utf16)[sentEnd - 1] == UInt16(UInt8(ascii: "4")))
    // Epoch rows in local time, without the date since the window is within one day,
    // with seconds since the epochs are shorter than a minute.
    #expect(lines.contains { $0.hasPrefix("  21:00:00 ") })
    #expect(lines.contains { $0.hasPrefix("  21:00:02 ") })
}

@Test func tableWithColorMarksLossAndNoData() throws {
    let table = render(try tableReport(), as: .table, color: true, timeZone: utc)
    #expect(table.contains("\u{1B}[31m"))
    #expect(table.contains("\u{1B}[2m"))
}

@Test func tableShowsDatesWhenTheWindowSpansDays() throws {
    let input = ReportInput(targets: [router])
    let report = try makeReport(input, options(from: t0, to: t0 + 6 * 60 * minute, epoch: 60 * minute))
    let table = render(report, as: .table, color: false, timeZone: TimeZone(identifier: "Europe/Berlin")!)
    // t0 is 22:00 in Berlin; the window runs into 2026-11-26.
    #expect(table.contains("  2026-11-25 22:00 "))
    #expect(table.contains("  2026-11-26 03:00 "))
    #expect(table.contains("Europe/Berlin (UTC+01:00)"))
}

