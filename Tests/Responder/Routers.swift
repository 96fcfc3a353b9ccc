import Glibc

// The routers in front of a destination, for pingem's path rounds (issue
// 13): a request whose TTL (hop limit) runs out at hop h is answered "time
// exceeded" by hop h's address, as a router would, unless that router stays
// silent or rate-limits; one that gets further reaches the destination,
// which answers echo. Only pingem's path probes (payload magic "PGEP") take
// this way: the destination's own behaviour (Config.swift) and its request
// counts stay the ordinary probes' alone. Each path request is one line of
// the path log (PathLogLine), so tests count exactly what every hop did.
//
// Config, under a destination's "path" (all fields but "hops" optional):
//   {"hops": [{"address": "198.18.0.101"},
//             {"address": "198.18.0.102", "quote_bytes": 8},
//             {"address": "198.18.0.103", "answer_every": 3},
//             {"address": "198.18.0.104", "silent": true}],
//    "loss_from_ttl": 3, "loss_every": 4,
//    "change_after_s": 10, "hops_after": [...]}
// - quote_bytes: how much of the ICMP message the time exceeded quotes after
//   the IP header: 8 is the echo header alone (RFC 792's minimum); absent,
//   all of it (RFC 1812 / RFC 4443 routers).
// - answer_every N: the router answers only its Nth, 2Nth, ... time
//   exceeded (counted from 1 per hop) and forwards everything: a rate limit.
// - silent: the router never answers time exceeded (forwards everything).
// - ecmp [a, b, ...]: equal-cost routers at this hop instead of "address";
//   a request meets ecmp[(identifier ^ checksum) % count]: the flow hash of a
//   router that hashes ICMP over its identifier and checksum, so probes that
//   keep both constant (Paris traceroute) always meet the same one.
// - loss_from_ttl f, loss_every N [1]: rounds whose number r (from the
//   payload) has r % N == N - 1 lose every request with TTL >= f at hop f
//   (forwarding loss from hop f on, the target included).
// - loss_during_outage: instead of every Nth round, the rounds that arrive
//   while the destination's own "outage" behaviour drops its ordinary
//   requests (Config.swift's window) lose from hop f: an outage that begins
//   at hop f, seen by the path rounds as by the target's probes.
// - change_after_s, hops_after: a route change, that many seconds after the
//   destination's first path request the hops are hops_after.

struct HopConfig: Codable, Sendable {
    var address: String
    var quote_bytes: Int?
    var answer_every: Int?
    var silent: Bool?
    var ecmp: [String]?

    /// The router a request meets at this hop.
    func router(for request: EchoRequest) -> String {
        guard let ecmp, !ecmp.isEmpty else { return address }
        return ecmp[Int(request.identifier ^ request.checksum) % ecmp.count]
    }
}

struct PathConfig: Codable, Sendable {
    var hops: [HopConfig]
    var loss_from_ttl: Int?
    var loss_every: Int?
    var loss_during_outage: Bool?
    var change_after_s: Double?
    var hops_after: [HopConfig]?
}

/// One line per path request.
struct PathLogLine: Codable, Sendable {
    var time_ns: Int64
    var family: Int
    var destination: String
    var ttl: Int
    /// Round and TTL from the payload (sequence field round << 8 | ttl).
    var round: UInt64
    var payload_ttl: Int
    var icmp_id, seq16: Int
    /// The request's ICMP checksum as received (Paris traceroute keeps it constant).
    var checksum: Int
    /// time-exceeded | rate-limited | silent | forward-loss | reply
    var action: String
    /// The hop (1-based) that answered or failed to, nil: the destination.
    var hop: Int?
    /// Who sent the answer, nil: nobody did.
    var answered_by: String?
    /// time-exceeded: bytes of the ICMP message quoted.
    var quoted: Int?
}

/// The path payload's round and TTL, nil for any payload but a path probe's.
func pathProbeFields(_ payload: [UInt8]) -> (round: UInt64, ttl: Int)? {
    guard payload.count >= 24, payload[0..<4] == [0x50, 0x47, 0x45, 0x50][...] else { return nil }
    let field = bigEndian(payload[16..<24])
    return (field >> 8, Int(field & 0xFF))
}

struct PathState {
    var firstRequest: Int64?
    /// Time exceeded asked of each hop so far (by hop address), for answer_every.
    var asked: [String: Int] = [:]
}

/// What one path request meets on its way: the log line and the packets.
func planPath(_ request: EchoRequest, fields: (round: UInt64, ttl: Int), config: PathConfig?,
              state: inout PathState, now: Int64, time: Int64, duringOutage: Bool = false) -> (PathLogLine, [PlannedPacket]) {
    let first = state.firstRequest ?? now
    state.firstRequest = first
    var hops = config?.hops ?? []
    if let after = config?.change_after_s, let changed = config?.hops_after, Double(now - first) / 1e9 >= after {
        hops = changed
    }
    let ttl = request.hopLimit
    var line = PathLogLine(
        time_ns: time, family: request.family, destination: addressText(request.destination), ttl: ttl,
        round: fields.round, payload_ttl: fields.ttl, icmp_id: Int(request.identifier), seq16: Int(request.sequence),
        checksum: Int(request.checksum), action: "reply", hop: nil, answered_by: nil, quoted: nil)
    let reached = min(ttl, hops.count + 1)  // the hop where the request ends (hops.count + 1: the destination)
    if let from = config?.loss_from_ttl, reached >= from {
        let every = UInt64(max(config?.loss_every ?? 1, 1))
        let lost = config?.loss_during_outage == true ? duringOutage : fields.round % every == every - 1
        if lost {
            line.action = "forward-loss"
            line.hop = from <= hops.count ? from : nil
            return (line, [])
        }
    }
    guard ttl <= hops.count else {
        line.answered_by = line.destination
        return (line, [PlannedPacket(delay: 0, kind: "reply", bytes: echoReply(to: request, payload: request.payload))])
    }
    let hop = hops[ttl - 1]
    line.hop = ttl
    if hop.silent == true {
        line.action = "silent"
        return (line, [])
    }
    let address = hop.router(for: request)
    let asked = (state.asked[address] ?? 0) + 1
    state.asked[address] = asked
    if asked % max(hop.answer_every ?? 1, 1) != 0 {
        line.action = "rate-limited"
        return (line, [])
    }
    guard let router = addressBytes(address) else { return (line, []) }
    let message = request.icmpMessage
    let quoted = min(hop.quote_bytes ?? message.count, message.count)
    line.action = "time-exceeded"
    line.answered_by = addressText(router)
    line.quoted = quoted
    return (line, [PlannedPacket(delay: 0, kind: "time-exceeded", bytes: timeExceeded(for: request, router: router, quoting: quoted))])
}

/// Time exceeded in transit (RFC 792 type 11 code 0 / RFC 4443 §3.3 type 3
/// code 0) for `request`, from `router`: the request's IP header and the
/// first `quoting` bytes of its ICMP message.
func timeExceeded(for request: EchoRequest, router: [UInt8], quoting: Int) -> [UInt8] {
    var icmp: [UInt8] = [request.family == 4 ? 11 : 3, 0, 0, 0, 0, 0, 0, 0]
    let header = request.family == 4 ? request.ipv4Header : Array(request.packet.prefix(40))
    icmp += header + request.icmpMessage.prefix(min(quoting, ipv6MinimumMTU - 40 - 8 - 40))
    return ipPacket(source: router, destination: request.source, icmp: icmp)
}
