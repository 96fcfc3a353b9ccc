// A target's path in the report (PathReport.swift): the JSON contract of
// "path" and "where", the --path table and its verdict in words, the outage
// lines, the CSV columns. Rounds are written as TestSupport's
// pathProbeRecords reads them ("++--|-": hops 3, 4 and the target lost).
import Foundation
import Store
import Testing
import TestSupport
@testable import Reports

private let utc = TimeZone(identifier: "UTC")!

/// 100 probes at 1 s; the 10 sent from 40 s are lost. Rounds every 5 s over
/// a path of 4 hops: the two rounds in the outage lost hop 3 onwards.
private func pathInput() -> ReportInput {
    var probes: [ProbeRecord] = []
    for i in 0..<100 { probes.append(probe(Double(i), rttMs: (40..<50).contains(i) ? nil : 5)) }
    var input = singleTargetInput(length: 110 * second, probes: probes)
    input.addresses = [AddressRecord(targetID: 1, sinceNs: t0 - minute, address: "203.0.113.50")]
    var rounds = repeatedRounds("++++|+", 20)
    rounds[8] = "++--|-"
    rounds[9] = "++--|-"
    input.pathProbes = pathProbeRecords(rounds, from: t0, spacingNs: 5 * second)
    return input
}

private func pathReport(epoch: Nanoseconds? = 50 * second) throws -> Report {
    try makeReport(pathInput(), options(epoch: epoch))
}

@Suite struct PathReportTests {
    @Test func jsonGivesThePathAndWhereOnSummaryEpochsAndOutages() throws {
        let json = render(try pathReport(), as: .json, color: false)
        let hop = { (ttl: Int, address: String, answered: Int, loss: String, rtt: String) in """
                {
                  "ttl": \(ttl),
                  "address": "\(address)",
                  "addresses": [
                    "\(address)"
                  ],
                  "sent": 20,
                  "answered": \(answered),
                  "loss_pct": \(loss),
                  "forward_loss_pct": \(loss),
                  "rtt_ms": {
                    "min": \(rtt),
                    "avg": \(rtt),
                    "p50": \(rtt),
                    "p90": \(rtt),
                    "p99": \(rtt),
                    "max": \(rtt),
                    "stddev": 0.000,
                    "jitter": 0.000
                  }
                }
        """ }
        let path = [hop(1, "198.18.1.1", 20, "0.000", "1.000"), hop(2, "198.18.2.1", 20, "0.000", "2.000"),
                    hop(3, "198.18.3.1", 18, "10.000", "3.000"), hop(4, "198.18.4.1", 18, "10.000", "4.000"),
                    hop(5, "203.0.113.50", 18, "10.000", "5.000")]
        let expected = """
              "outages": [
                {
                  "start": "2026-11-25T21:00:40.000Z",
                  "end": "2026-11-25T21:00:50.000Z",
                  "lost": 10,
                  "seconds": 10.000,
                  "where": {
                    "segment": "path",
                    "ttl": 3,
                    "address": "198.18.3.1"
                  }
                }
              ],
              "path": [

        """ + path.joined(separator: ",\n") + """

              ]
            }
          ]
        }

        """
        #expect(json.hasSuffix(expected), "\(json)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let target = try #require((object["targets"] as? [[String: Any]])?.first)
        let summaryWhere = (target["summary"] as? [String: Any])?["where"] as? [String: Any]
        #expect(summaryWhere?["segment"] as? String == "path" && summaryWhere?["ttl"] as? Int == 3)
        #expect(summaryWhere?["address"] as? String == "198.18.3.1")
        let epochs = try #require(target["epochs"] as? [[String: Any]])
        #expect((epochs[0]["where"] as? [String: Any])?["segment"] as? String == "path")
        // Nothing lost: null.
        #expect(epochs[1]["where"] is NSNull)
    }

    @Test func eachEpochCountsItsOwnRoundsHopByHop() throws {
        let epochs = try pathReport().targets[0].epochs
        let counts = { (ttl: Int, answered: Int, forwardLost: Int) in
            PathHopCounts(ttl: ttl, isTarget: ttl == 5, sent: 10, answered: answered, forwardLost: forwardLost)
        }
        // The outage's two rounds lost hop 3 onwards: forward loss at 3, 4 and the target.
        #expect(epochs.map(\.path) == [
            [counts(1, 10, 0), counts(2, 10, 0), counts(3, 8, 2), counts(4, 8, 2), counts(5, 8, 2)],
            (1...5).map { counts($0, 10, 0) },
        ])
        // Without rounds, no epoch has a path.
        var input = pathInput()
        input.pathProbes = []
        #expect(try makeReport(input, options(epoch: 50 * second)).targets[0].epochs.allSatisfy { $0.path.isEmpty })
    }

    @Test func aHopThatNeverAnsweredHasANullAddressAndEveryRoundThePathHad() throws {
        var input = pathInput()
        input.pathProbes = pathProbeRecords(repeatedRounds("+-+|+", 3) + ["+-b|+"], from: t0)
        let report = try makeReport(input, options())
        #expect(report.targets[0].path.map(\.ttl) == [1, 2, 3, 4])
        #expect(report.targets[0].path[1].address == nil && report.targets[0].path[1].lossPct == 100)
        #expect(report.targets[0].path[1].forwardLossPct == 0)
        #expect(report.targets[0].path[2].addresses == ["198.18.3.1", "198.18.3.2"])
        let json = render(report, as: .json, color: false)
        #expect(json.contains("\"ttl\": 2,\n          \"address\": null,\n          \"addresses\": [],"))
        // The rounds saw no loss (none in the outage): where is unknown.
        #expect(report.targets[0].summary.lossWhere == .unknown)
        #expect(report.targets[0].outages[0].lossWhere == .unknown)
    }

    @Test func thePathTableIsMtrStyleWithTheVerdictInWords() throws {
        let table = render(try pathReport(epoch: nil), as: .table, color: false, timeZone: utc, path: true)
        let lines = table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let header = try #require(lines.firstIndex { $0.hasPrefix("  HOP") })
        #expect(Array(lines[header...(header + 6)]) == [
            "  HOP  ADDRESS       SENT  LOSS%  FWD LOSS%  P50 ms  P90 ms  MAX ms",
            "  1    198.18.1.1      20   0.00       0.00    1.00    1.00    1.00",
            "  2    198.18.2.1      20   0.00       0.00    2.00    2.00    2.00",
            "  3    198.18.3.1      20  10.00      10.00    3.00    3.00    3.00",
            "  4    198.18.4.1      20  10.00      10.00    4.00    4.00    4.00",
            "  5    203.0.113.50    20  10.00      10.00    5.00    5.00    5.00",
            "  where: loss begins at hop 3, 198.18.3.1, and continues to the target: beyond your gateway",
        ])
        #expect(table.contains("  outage 21:00:40 → 21:00:50, 10 probes, 10.0 s, where: hop 3, 198.18.3.1\n"))
        // Without --path: no hop table, but the outage still says where.
        let plain = render(try pathReport(epoch: nil), as: .table, color: false, timeZone: utc)
        #expect(!plain.contains("HOP") && plain.contains("10.0 s, where: hop 3, 198.18.3.1\n"))
    }

    @Test func thePathTableSaysSoWithoutRounds() throws {
        var input = pathInput()
        input.pathProbes = []
        let table = render(try makeReport(input, options()), as: .table, color: false, timeZone: utc, path: true)
        #expect(table.contains("\n  path: no path rounds in this window (paths off, recorded before pingem had paths, or a window over 7 days)\n"))
        #expect(table.contains("10.0 s, where: unknown\n"))
    }

    @Test func everyVerdictHasItsWords() {
        #expect(whereSentence(nil) == "nothing was lost in this window")
        #expect(whereSentence(PathWhere(segment: .gateway, ttl: 1, address: "192.168.1.1"))
                == "loss begins at hop 1, 192.168.1.1: your gateway")
        #expect(whereSentence(PathWhere(segment: .target, ttl: 9, address: "203.0.113.50"))
                == "every hop answered but the target did not: the far end itself")
        #expect(whereSentence(PathWhere(segment: .local)) == "the lost probes were never sent (send errors): your own machine or link")
        #expect(whereSentence(.unknown).hasPrefix("no path round saw the loss"))
        #expect(whereLabel(PathWhere(segment: .gateway, ttl: 1, address: "192.168.1.1")) == "where: gateway, 192.168.1.1")
        #expect(whereLabel(PathWhere(segment: .path, ttl: 4, address: nil)) == "where: hop 4")
        #expect(whereLabel(PathWhere(segment: .local)) == "where: local")
    }

    @Test func csvGivesEachPeriodsWhere() throws {
        let lines = render(try pathReport(), as: .csv, color: false).split(separator: "\n").map(String.init)
        #expect(lines[0].hasSuffix(",source,interface,tos,where_segment,where_ttl,where_address"))
        #expect(lines[1].hasSuffix(",,,,path,3,198.18.3.1"))
        #expect(lines[2].hasSuffix(",,,,,,"))
        #expect(lines.count == 3)
    }

    /// The summary path judges the same raw path probes with the same
    /// outages and lost counts: the same path and the same where.
    @Test func theSummaryPathGivesTheSamePath() throws {
        let input = pathInput()
        let raw = try makeReport(input, options(epoch: 50 * second))
        let fast = try summaryReport(input, options(epoch: 50 * second), histograms: false).report
        #expect(fast.targets[0].path == raw.targets[0].path)
        #expect(fast.targets[0].summary.lossWhere == raw.targets[0].summary.lossWhere)
        #expect(fast.targets[0].epochs.map(\.summary.lossWhere) == raw.targets[0].epochs.map(\.summary.lossWhere))
        #expect(fast.targets[0].outages == raw.targets[0].outages)
        #expect(raw.targets[0].outages[0].lossWhere.segment == .path)
    }
}
