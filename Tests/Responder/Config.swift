import Foundation
import Glibc

// The responder's config file, JSON. One entry per destination address the
// responder answers for; every other destination is silent. Example:
//
// {"destinations": [
//   {"address": "198.18.0.10", "behaviour": "clean"},
//   {"address": "198.18.0.11", "behaviour": "slow", "delay_ms": 250},
//   {"address": "198.18.0.12", "behaviour": "lossy", "seed": 7, "loss_percent": 30},
//   {"address": "198.18.0.13", "behaviour": "outage", "outage_start_s": 3, "outage_end_s": 6},
//   {"address": "198.18.0.14", "behaviour": "late", "every": 4, "delay_ms": 3000},
//   {"address": "198.18.0.15", "behaviour": "duplicate", "every": 3, "delay_ms": 5},
//   {"address": "198.18.0.16", "behaviour": "unreachable", "router": "198.18.0.254"},
//   {"address": "198.18.0.17", "behaviour": "garbage-first", "delay_ms": 20, "cut_bytes": 12},
//   {"address": "fd00:18::18", "behaviour": "silent"}
// ]}
//
// Fields, all optional but "address" and "behaviour" (defaults in brackets):
// - delay_ms: slow [250], late [3000]: the reply's delay; duplicate [5]: gap
//   before the second copy; garbage-first [20]: gap before the true reply.
// - seed [0], loss_percent [30]: lossy drops a request when
//   splitmix64(seed ^ seq64) % 100 < loss_percent, where seq64 is the pingem
//   payload's sequence (the 16-bit ICMP sequence if the payload is not pingem's).
// - outage_start_s [3], outage_end_s [6]: outage drops every request received
//   in [start, end) seconds after the first request to that destination.
// - every: late [4], duplicate [3]: the Nth, 2Nth, ... request to that
//   destination (counted from 1) is delayed / answered twice.
// - router: unreachable's source address [198.18.0.254 or fd00:18::fe]; it
//   must lie on the TUN's subnet or the kernel drops the error as martian.
// - cut_bytes [12]: garbage-first's IPv6 truncated reply keeps this many payload
//   bytes (IPv4's truncated reply is always the bare 8-byte ICMP header).
// - path: the routers in front of the destination, for pingem's path
//   probes (Routers.swift); absent: the destination is the first hop.

enum Behaviour: String, Codable, Sendable {
    case clean, slow, lossy, outage, late, duplicate, unreachable
    case garbageFirst = "garbage-first"
    case silent
}

struct DestinationConfig: Codable, Sendable {
    var address: String
    var behaviour: Behaviour
    var delay_ms: Int?
    var seed: UInt64?
    var loss_percent: Int?
    var outage_start_s: Double?
    var outage_end_s: Double?
    var every: Int?
    var router: String?
    var cut_bytes: Int?
    var path: PathConfig?
}

struct ResponderConfig: Codable, Sendable {
    var destinations: [DestinationConfig]
}

/// Address bytes (4 or 16) for a textual IPv4/IPv6 address, nil if neither.
func addressBytes(_ text: String) -> [UInt8]? {
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 {
        return withUnsafeBytes(of: &v4) { Array($0) }
    }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 {
        return withUnsafeBytes(of: &v6) { Array($0) }
    }
    return nil
}

/// Canonical text for address bytes, so config keys and packet addresses compare equal.
func addressText(_ bytes: [UInt8]) -> String {
    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let family = bytes.count == 4 ? AF_INET : AF_INET6
    _ = bytes.withUnsafeBytes { raw in
        inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count))
    }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
