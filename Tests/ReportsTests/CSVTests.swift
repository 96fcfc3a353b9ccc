import Store
import Testing
@testable import Reports

@Test func csvHeaderAndOneRowPerTargetWithoutEpochs() throws {
    var report = try contractReport()
    report.epochNs = nil
    report.targets[0].epochs = []
    let lines = render(report, as: .csv, color: false).split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines == [
        "target,host,start,end,sent,received,lost,late,duplicates,errors,unknown,loss_pct,coverage,rtt_min_ms,rtt_avg_ms,rtt_p50_ms,rtt_p90_ms,rtt_p99_ms,rtt_max_ms,rtt_stddev_ms,rtt_jitter_ms,source,interface,tos,where_segment,where_ttl,where_address",
        "router,r.lan,2026-11-25T21:00:00.000Z,2026-11-25T21:00:04.000Z,4,2,2,0,1,1,0,50.000,1.0000,10.000,15.000,10.000,20.000,20.000,20.000,5.000,10.000,,,,unknown,,",
        "",
    ])
}

@Test func csvRowPerEpochWithEmptyCellsForNull() throws {
    let lines = render(try contractReport(), as: .csv, color: false).split(separator: "\n")
    #expect(lines.count == 3)
    #expect(lines[1] == "router,r.lan,2026-11-25T21:00:00.000Z,2026-11-25T21:00:02.000Z,2,1,1,0,1,0,0,50.000,1.0000,10.000,10.000,10.000,10.000,10.000,10.000,0.000,,,,,unknown,,")
}

@Test func csvQuotesFieldsPerRFC4180() throws {
    let input = ReportInput(targets: [TargetRecord(id: 1, name: "a,\"b\"", host: "line\nbreak")])
    let csv = render(try makeReport(input, options(to: at(60))), as: .csv, color: false)
    #expect(csv.contains("\n\"a,\"\"b\"\"\",\"line\nbreak\",2026-11-25T21:00:00.000Z,2026-11-25T21:01:00.000Z,0,0,0,0,0,0,0,,0.0000,,,,,,,,,,,,,,\n"))
}
