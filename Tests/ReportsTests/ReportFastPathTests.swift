// The report's fast paths must agree with the obvious slow definitions:
// answers given out of order classify as if given in order.
import Store
import Testing
@testable import Reports

@Test func answersOutOfOrderAndInterleavedAcrossTargetsClassifyAsInOrder() throws {
    let other = TargetRecord(id: 2, name: "other", host: "o.lan")
    var probes: [ProbeRecord] = [], replies: [ReplyRecord] = [], errors: [ICMPErrorRecord] = []
    for s in 0..<20 {
        for target: Int64 in [1, 2] {
            probes.append(probe(Double(s), target: target))
            switch (s + Int(target)) % 4 {
            case 0: replies += [reply(Double(s), rttMs: Double(10 + s), target: target),
                                reply(Double(s), rttMs: Double(5 + s), target: target)]
            case 1: errors.append(ICMPErrorRecord(sentNs: at(Double(s)), targetID: target, rttNs: millisecond,
                                                  family: 4, type: 3, code: UInt8(target), source: "10.0.0.1"))
            case 2: replies.append(reply(Double(s), rttMs: 2500, target: target))
            default: break
            }
        }
    }
    func input(_ replies: [ReplyRecord], _ errors: [ICMPErrorRecord]) -> ReportInput {
        ReportInput(targets: [router, other], sessions: [makeSession(start: t0, stopped: t0 + 100 * second)],
                    sessionTargets: [SessionTargetRecord(sessionID: 1, targetID: 1, offsetNs: 0),
                                     SessionTargetRecord(sessionID: 1, targetID: 2, offsetNs: 0)],
                    probes: probes, replies: replies, icmpErrors: errors)
    }
    let ordered = try makeReport(input(replies, errors), options(epoch: 10 * second, outageMin: 1))
    let shuffled = try makeReport(input(replies.reversed(), errors.reversed()), options(epoch: 10 * second, outageMin: 1))
    #expect(ordered == shuffled)
    let first = ordered.targets[0].summary
    // s where (s+1) % 4 == 0 has two replies (the smaller rtt counts), == 1 an ICMP error, == 2 a late reply.
    #expect((first.sent, first.received, first.lost, first.late, first.duplicates, first.errors) == (20, 5, 15, 5, 5, 5))
    #expect(first.errorKinds == ["host-unreachable": 5])
    #expect(ordered.targets[1].summary.errorKinds == ["protocol-unreachable": 5])
    #expect(isClose(first.rtt.min, 8))  // s = 3: min(13, 8)
}
