// How a target was probed (issue 12: --source, --interface, --tos, stored in
// session_target) in every report format: the table next to the target, JSON
// fields on the target, CSV columns; the latest session of the window wins.
import Store
import Testing
@testable import Reports

private func probedInput() -> ReportInput {
    var input = singleTargetInput(length: 100 * second, probes: [probe(1, rttMs: 10), probe(60, rttMs: 12)])
    input.addresses = [AddressRecord(targetID: 1, sinceNs: t0, address: "192.0.2.1")]
    // Two sessions: the first plain, the second by eth1 from 192.0.2.10 with EF.
    input.sessions = [makeSession(id: 1, start: t0, stopped: t0 + 50 * second),
                      makeSession(id: 2, start: t0 + 50 * second, stopped: t0 + 100 * second)]
    input.sessionTargets = [SessionTargetRecord(sessionID: 1, targetID: 1, offsetNs: 0),
                            SessionTargetRecord(sessionID: 2, targetID: 1, offsetNs: 0,
                                                source: "192.0.2.10", interface: "eth1", tos: 184)]
    return input
}

@Test func theLatestSessionsSourceInterfaceAndTOSAreShown() throws {
    let report = try makeReport(probedInput(), options(to: at(100)))
    let table = render(report, as: .table, color: false)
    #expect(table.contains("192.0.2.1 (via eth1, from 192.0.2.10, tos 0xb8)"), "\(table)")
    let json = render(report, as: .json, color: false)
    #expect(json.contains("\"source\": \"192.0.2.10\",\n      \"interface\": \"eth1\",\n      \"tos\": 184,"), "\(json)")
    let csv = render(report, as: .csv, color: false).split(separator: "\n")
    #expect(csv[1].hasSuffix(",192.0.2.10,eth1,184,,,"), "\(csv)")

    // A window of the plain session alone shows nothing of the kind.
    let early = try makeReport(probedInput(), options(to: at(40)))
    #expect(!render(early, as: .table, color: false).contains("via"))
    #expect(render(early, as: .json, color: false).contains("\"source\": null,\n      \"interface\": null,\n      \"tos\": null,"))
    #expect(render(early, as: .csv, color: false).split(separator: "\n")[1].hasSuffix(",,,,,,"))
}

@Test func theSummaryPathShowsThemToo() throws {
    let report = try makeSummaryReport(probedInput(), options(to: at(100)))
    #expect(report.targets[0].source == "192.0.2.10" && report.targets[0].interface == "eth1" && report.targets[0].tos == 184)
}
