// Names for why a probe failed, as reports print them in error_kinds.
// Send errors are errno names (from Glibc, not hard-coded numbers, so they
// match the platform that recorded); ICMP names follow the RFCs.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Store

/// The error kind of a failed send: an errno name, "errno N", or "unresolved".
public func sendErrorKind(_ sendError: Int32) -> String {
    if sendError == sendErrorUnresolved { return "unresolved" }
    switch sendError {
    case ENETUNREACH: return "ENETUNREACH"
    case EHOSTUNREACH: return "EHOSTUNREACH"
    case ENETDOWN: return "ENETDOWN"
    case EACCES: return "EACCES"
    case EPERM: return "EPERM"
    case ENOBUFS: return "ENOBUFS"
    case EMSGSIZE: return "EMSGSIZE"
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL"
    case EINVAL: return "EINVAL"
    default: return "errno \(sendError)"
    }
}

/// The error kind of an ICMP error: family 4 per RFC 792/1812, 6 per RFC 4443.
public func icmpErrorKind(family: Int, type: UInt8, code: UInt8) -> String {
    if family == 6 {
        switch type {
        case 1:  // Destination Unreachable, RFC 4443 section 3.1
            switch code {
            case 0: return "no-route"
            case 1: return "admin-prohibited"
            case 3: return "address-unreachable"
            case 4: return "port-unreachable"
            default: return "unreachable code \(code)"
            }
        case 2: return "packet-too-big"
        case 3: return "hop-limit-exceeded"
        case 4: return "parameter-problem"
        default: break
        }
    } else if family == 4 {
        switch type {
        case 3:  // Destination Unreachable, RFC 792; codes 9, 10, 13 from RFC 1812 section 5.2.7.1
            switch code {
            case 0: return "net-unreachable"
            case 1: return "host-unreachable"
            case 2: return "protocol-unreachable"
            case 3: return "port-unreachable"
            case 4: return "fragmentation-needed"
            case 9, 10, 13: return "admin-prohibited"
            default: return "unreachable code \(code)"
            }
        case 11:
            if code == 0 { return "ttl-exceeded" }
            if code == 1 { return "reassembly-timeout" }
        case 12: return "parameter-problem"
        case 4: return "source-quench"
        default: break
        }
    }
    return "icmp type \(type) code \(code)"
}

/// The error kind of a failure as Store keeps it.
func failureName(_ kind: FailureKind) -> String {
    switch kind {
    case .send(let errno): return sendErrorKind(errno)
    case .icmp(let family, let type, let code): return icmpErrorKind(family: family, type: type, code: code)
    }
}
