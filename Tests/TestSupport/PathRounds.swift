// Path rounds written the way the judge's tests read them (trippy's
// declarative rounds): a round is its hops, "|", then the target, one
// character per probe: "+" answered (hop h from 198.18.h.1, the target from
// `targetAddress`), "b" answered from the hop's second router (198.18.h.2),
// "-" no answer, "x" never sent (ENETUNREACH). "++-|-" is a round of
// distance 4 in which hop 3 and the target went unanswered. Rounds are
// `spacingNs` apart, a round's probes 1 ms apart, hop h answers in h ms.
#if canImport(Glibc)
import Glibc
#endif
public import Store

/// The address hop `ttl` answers from in `pathProbeRecords`.
public func pathHopAddress(_ ttl: Int, second: Bool = false) -> String { "198.18.\(ttl).\(second ? 2 : 1)" }

/// The path probes of `rounds` for `target`, the first round at `from`.
public func pathProbeRecords(_ rounds: [String], target: Int64 = 1, from: Nanoseconds,
                             spacingNs: Nanoseconds = 30_000_000_000,
                             targetAddress: String = "203.0.113.50") -> [PathProbeRecord] {
    let ms: Nanoseconds = 1_000_000
    var result: [PathProbeRecord] = []
    for (index, round) in rounds.enumerated() {
        let roundNs = from + Nanoseconds(index) * spacingNs
        let parts = round.split(separator: "|", omittingEmptySubsequences: false)
        precondition(parts.count == 2 && parts[1].count == 1, "a round is hops|target, e.g. \"++-|-\"")
        let hops = Array(parts[0]), last = parts[1].first!
        for (i, mark) in (hops + [last]).enumerated() {
            let ttl = i + 1, toTarget = i == hops.count
            let sent = roundNs + Nanoseconds(i) * ms
            var record = PathProbeRecord(targetID: target, roundNs: roundNs, ttl: ttl, toTarget: toTarget, sentNs: sent)
            switch mark {
            case "+", "b":
                record.receivedNs = sent + Nanoseconds(ttl) * ms
                record.from = toTarget ? targetAddress : pathHopAddress(ttl, second: mark == "b")
                record.answer = toTarget ? .echoReply : .timeExceeded
                record.icmpType = toTarget ? 0 : 11
                record.icmpCode = 0
            case "x": record.sendError = ENETUNREACH
            default: break
            }
            result.append(record)
        }
    }
    return result
}

/// `round` `count` times.
public func repeatedRounds(_ round: String, _ count: Int) -> [String] { Array(repeating: round, count: count) }
