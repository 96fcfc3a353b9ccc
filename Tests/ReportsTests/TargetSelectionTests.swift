import Store
import Testing
@testable import Reports

private let three = ReportInput(targets: [
    TargetRecord(id: 1, name: "router", host: "192.168.1.1"),
    TargetRecord(id: 2, name: "dns", host: "one.one.one.one"),
    TargetRecord(id: 3, name: "web", host: "example.net"),
])

@Test func allTargetsByDefaultInTheirOrder() throws {
    #expect(try makeReport(three, options()).targets.map(\.target) == ["router", "dns", "web"])
}

@Test func targetsAreChosenByNameOrHostInTheOrderAsked() throws {
    #expect(try makeReport(three, options(targets: ["one.one.one.one"])).targets.map(\.target) == ["dns"])
    #expect(try makeReport(three, options(targets: ["web", "192.168.1.1", "web"])).targets.map(\.target) == ["web", "router"])
}

@Test func unknownTargetErrorListsTheKnownNames() {
    #expect {
        try makeReport(three, options(targets: ["nas"]))
    } throws: { error in
        let text = (error as? ReportError)?.description ?? ""
        return text.contains("\"nas\"") && text.contains("router, dns, web")
    }
}

@Test func probesOfOtherTargetsAreNotCounted() throws {
    var input = singleTargetInput(probes: [probe(0, rttMs: 1), probe(0, rttMs: 1, target: 2), probe(1, target: 2)])
    input.targets.append(TargetRecord(id: 2, name: "dns", host: "1.1.1.1"))
    let report = try makeReport(input, options())
    #expect(report.targets.map(\.summary.sent) == [1, 2])
    // The dns target has no session_target rows: its time is not covered.
    #expect(report.targets[1].summary.coverage == 0)
}

@Test func addressesInEffectDuringTheWindowAreDistinctAndInOrder() throws {
    var input = ReportInput(targets: [router])
    input.addresses = [
        AddressRecord(targetID: 1, sinceNs: t0 - 600 * minute, address: "10.0.0.1"),
        AddressRecord(targetID: 1, sinceNs: t0 + 6 * minute, address: "10.0.0.2"),
        AddressRecord(targetID: 1, sinceNs: t0 - 60 * minute, address: "10.0.0.2"),
        AddressRecord(targetID: 1, sinceNs: t0 + 5 * minute, address: "10.0.0.3"),
        AddressRecord(targetID: 1, sinceNs: t0 + 20 * minute, address: "10.0.0.9"),
        AddressRecord(targetID: 2, sinceNs: t0, address: "10.9.9.9"),
    ]
    let window = options(to: t0 + 15 * minute)
    #expect(try makeReport(input, window).targets[0].addresses == ["10.0.0.2", "10.0.0.3"])
    // A change exactly at the window's start is the one in effect.
    input.addresses.append(AddressRecord(targetID: 1, sinceNs: t0, address: "10.0.0.4"))
    #expect(try makeReport(input, window).targets[0].addresses == ["10.0.0.4", "10.0.0.3", "10.0.0.2"])
}
