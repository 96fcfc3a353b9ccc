import Foundation
import Glibc
import Store
import Testing
@testable import Reports

/// Four probes in two 2 s epochs: 10 ms (plus a duplicate at 15 ms), no
/// reply, a failed send (ENETUNREACH), 20 ms.
func contractReport() throws -> Report {
    var input = singleTargetInput(
        length: 10 * second,
        probes: [probe(0, rttMs: 10), probe(1), probe(2, sendError: ENETUNREACH), probe(3, rttMs: 20)],
        replies: [reply(0, rttMs: 15)])
    input.addresses = [AddressRecord(targetID: 1, sinceNs: t0 - 60 * minute, address: "10.0.0.1")]
    return try makeReport(input, options(to: at(4), epoch: 2 * second, outageMin: 2))
}

@Test func jsonContract() throws {
    let expected = """
    {
      "window": {
        "since": "2026-11-25T21:00:00.000Z",
        "until": "2026-11-25T21:00:04.000Z",
        "epoch_seconds": 2,
        "timeout_ms": 2000,
        "percentiles": "exact"
      },
      "targets": [
        {
          "target": "router",
          "host": "r.lan",
          "addresses": [
            "10.0.0.1"
          ],
          "source": null,
          "interface": null,
          "tos": null,
          "summary": {
            "sent": 4,
            "received": 2,
            "lost": 2,
            "late": 0,
            "duplicates": 1,
            "errors": 1,
            "error_kinds": {
              "ENETUNREACH": 1
            },
            "unknown": 0,
            "loss_pct": 50.000,
            "coverage": 1.0000,
            "rtt_ms": {
              "min": 10.000,
              "avg": 15.000,
              "p50": 10.000,
              "p90": 20.000,
              "p99": 20.000,
              "max": 20.000,
              "stddev": 5.000,
              "jitter": 10.000
            },
            "where": {
              "segment": "unknown",
              "ttl": null,
              "address": null
            }
          },
          "epochs": [
            {
              "start": "2026-11-25T21:00:00.000Z",
              "end": "2026-11-25T21:00:02.000Z",
              "sent": 2,
              "received": 1,
              "lost": 1,
              "late": 0,
              "duplicates": 1,
              "errors": 0,
              "error_kinds": {},
              "unknown": 0,
              "loss_pct": 50.000,
              "coverage": 1.0000,
              "rtt_ms": {
                "min": 10.000,
                "avg": 10.000,
                "p50": 10.000,
                "p90": 10.000,
                "p99": 10.000,
                "max": 10.000,
                "stddev": 0.000,
                "jitter": null
              },
              "where": {
                "segment": "unknown",
                "ttl": null,
                "address": null
              }
            },
            {
              "start": "2026-11-25T21:00:02.000Z",
              "end": "2026-11-25T21:00:04.000Z",
              "sent": 2,
              "received": 1,
              "lost": 1,
              "late": 0,
              "duplicates": 0,
              "errors": 1,
              "error_kinds": {
                "ENETUNREACH": 1
              },
              "unknown": 0,
              "loss_pct": 50.000,
              "coverage": 1.0000,
              "rtt_ms": {
                "min": 20.000,
                "avg": 20.000,
                "p50": 20.000,
                "p90": 20.000,
                "p99": 20.000,
                "max": 20.000,
                "stddev": 0.000,
                "jitter": null
              },
              "where": {
                "segment": "unknown",
                "ttl": null,
                "address": null
              }
            }
          ],
          "outages": [
            {
              "start": "2026-11-25T21:00:01.000Z",
              "end": "2026-11-25T21:00:03.000Z",
              "lost": 2,
              "seconds": 2.000,
              "where": {
                "segment": "unknown",
                "ttl": null,
                "address": null
              }
            }
          ],
          "path": []
        }
      ]
    }

    """
    let json = render(try contractReport(), as: .json, color: true)
    #expect(json == expected)
    #expect(try JSONSerialization.jsonObject(with: Data(json.utf8)) is [String: Any])
}

@Test func jsonWithoutEpochsHasNullEpochSecondsAndNoEpochs() throws {
    let input = ReportInput(targets: [TargetRecord(id: 7, name: "empty", host: "e")])
    let json = render(try makeReport(input, options(timeout: 250 * millisecond)), as: .json, color: false)
    #expect(json.contains("\"epoch_seconds\": null,"))
    #expect(json.contains("\"timeout_ms\": 250,\n    \"percentiles\": \"exact\"\n"))
    #expect(json.contains("\"epochs\": [],"))
    #expect(json.contains("\"addresses\": [],"))
    // No data: nulls, never 100 % loss.
    #expect(json.contains("\"loss_pct\": null,"))
    #expect(json.contains("\"coverage\": 0.0000,"))
    let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
    #expect(object?["targets"] is [Any])
}

@Test func jsonStringsEscapeQuotesControlCharactersAndScriptEnds() throws {
    #expect(jsonString("a\"b\\c\n\t\u{01}</script>é") == "\"a\\\"b\\\\c\\n\\t\\u0001<\\/script>é\"")
    let input = ReportInput(targets: [TargetRecord(id: 1, name: "we\"ird\u{1F}</", host: "h\\")])
    let json = render(try makeReport(input, options()), as: .json, color: false)
    let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
    let target = (object?["targets"] as? [[String: Any]])?.first
    #expect(target?["target"] as? String == "we\"ird\u{1F}</")
    #expect(target?["host"] as? String == "h\\")
}
