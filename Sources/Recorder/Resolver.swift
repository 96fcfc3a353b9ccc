// Names to addresses. getaddrinfo blocks (for seconds when DNS is down), so
// it runs on the resolver thread, never on the sender's.
import Glibc

extension IPAddress {
    /// Parses a numeric IPv4 or IPv6 address ("192.0.2.1", "2001:db8::1"),
    /// an IPv6 one with its zone too ("fe80::1%eth0", or "%2" by index);
    /// nil also for a zone that names no interface here.
    public init?(parsing text: String) {
        if let percent = text.firstIndex(of: "%") {
            guard let index = System.interfaceIndex(String(text[text.index(after: percent)...])),
                  let address = IPAddress(parsing: String(text[..<percent])), address.family == .v6
            else { return nil }
            self.init(bytes: address.bytes, scopeID: index)
            return
        }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v6) { Array($0) })
            return
        }
        return nil
    }

    /// The numeric form (inet_ntop), as stored in the database.
    public var text: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok else { return "?" }
        let numeric = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        // The zone by name, as ping and `ip` print it: an index means
        // nothing to a reader, and the name is what the user typed.
        return scopeID == 0 ? numeric : "\(numeric)%\(System.interfaceName(scopeID) ?? String(scopeID))"
    }

    /// The zone of "address%zone" when it names no interface on this
    /// machine (nil when there is none, or it names one).
    public static func unknownZone(in text: String) -> String? {
        guard let percent = text.firstIndex(of: "%") else { return nil }
        let zone = String(text[text.index(after: percent)...])
        return System.interfaceIndex(zone) == nil ? zone : nil
    }
}

public enum Resolution: Sendable, Equatable {
    case resolved(IPAddress)
    /// `nameGone`: the answer says the name has no address (EAI_NONAME,
    /// EAI_NODATA: removed from /etc/hosts or DNS), as opposed to a resolver
    /// that could not answer (EAI_AGAIN, no network), which says nothing
    /// about the target.
    case failed(String, nameGone: Bool)
    /// The name has addresses, but none of the one family the target may
    /// use (-4, -6, or its source's): as good as gone for this target.
    case lacks(IPFamily)
}

/// glibc's EAI_NODATA (the name exists but has no address), which Glibc
/// does not export to Swift: it is behind _GNU_SOURCE in netdb.h.
private let eaiNoData: Int32 = -5

/// Resolves a host to one address of `families` (those the transport can
/// reach, narrowed by the target's options), the first in the order
/// getaddrinfo gives them (RFC 6724 preference, /etc/gai.conf).
public func resolve(host: String, families: Set<IPFamily>) -> Resolution {
    if let literal = IPAddress(parsing: host) {
        return families.contains(literal.family)
            ? .resolved(literal)
            : .failed("\(host) is an IPv\(literal.family.rawValue) address but this machine has no IPv\(literal.family.rawValue) ICMP socket", nameGone: true)
    }
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
    var result: UnsafeMutablePointer<addrinfo>? = nil
    let rc = getaddrinfo(host, nil, &hints, &result)
    guard rc == 0, let first = result else {
        // EAI_SYSTEM's text is just "System error": the reason is in errno.
        let why = rc == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(rc))
        return .failed(why, nameGone: rc == EAI_NONAME || rc == eaiNoData)
    }
    defer { freeaddrinfo(first) }
    var cursor: UnsafeMutablePointer<addrinfo>? = first
    while let ai = cursor {
        if ai.pointee.ai_family == AF_INET, families.contains(.v4), let sa = ai.pointee.ai_addr {
            let bytes = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in
                withUnsafeBytes(of: p.pointee.sin_addr) { Array($0) }
            }
            if let a = IPAddress(bytes: bytes) { return .resolved(a) }
        } else if ai.pointee.ai_family == AF_INET6, families.contains(.v6), let sa = ai.pointee.ai_addr {
            // A link-local answer carries its interface (nss-mdns gives one;
            // glibc's hosts file takes no zone and skips such a line).
            let (bytes, scope) = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                (withUnsafeBytes(of: p.pointee.sin6_addr) { Array($0) }, p.pointee.sin6_scope_id)
            }
            if let a = IPAddress(bytes: bytes, scopeID: scope) { return .resolved(a) }
        }
        cursor = ai.pointee.ai_next
    }
    return families.count == 1 ? .lacks(families.first!) : .failed("no address of a usable family", nameGone: true)
}

extension TargetSpec {
    /// The log line for a name that did not resolve, worded the same at
    /// start and while recording. At start a name that does not exist is
    /// most likely a typo, which must be seen at once, not after a day of
    /// "lost" probes; a resolver that cannot answer yet (EAI_AGAIN, no
    /// network at boot) is not the name's fault.
    public func doesNotResolve(_ why: String, nameGone: Bool, atStart: Bool, then consequence: String) -> String {
        let hint = !atStart ? "" : nameGone ? ": no such name, check it for a typo" : ": the resolver cannot answer yet"
        return "\(name): \(host) does not resolve (\(why))\(hint); \(consequence)"
    }

    /// The log line for a name with no address of the family the target
    /// must use, said once: unlike a typo, only a change of the name's
    /// addresses (or of the target) mends it.
    public func lacks(_ family: IPFamily, then consequence: String) -> String {
        let why = options.family == family ? "IPv\(family.rawValue) was chosen"
            : options.source.map { "its source \($0.text) is IPv\(family.rawValue)" } ?? "this machine has IPv\(family.rawValue) ICMP sockets only"
        return "\(name): \(host) has no IPv\(family.rawValue) address (\(why)); \(consequence)"
    }

    /// The families this target's name may resolve to, of those available.
    public func families(of available: Set<IPFamily>) -> Set<IPFamily> {
        options.requiredFamily.map { available.intersection([$0]) } ?? available
    }
}

/// A target as given on the command line (or as one line of a targets
/// file): `[label=]host[,option...]`. The argument is split at its first
/// comma (no host name or IPv6 address holds one), the head at its last
/// "=" so labels may contain "=" themselves; the options are ProbeOptions'.
public struct TargetSpec: Sendable, Equatable {
    public var label: String?
    public var host: String
    /// As given after the host; the global flags fill in the rest (`over`).
    public var options: ProbeOptions
    public var name: String { label ?? host }

    public init(parsing argument: String) throws {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
        let head = String(parts[0])
        if let eq = head.lastIndex(of: "=") {
            let label = String(head[..<eq])
            let host = String(head[head.index(after: eq)...])
            guard !label.isEmpty, !host.isEmpty else {
                throw RecorderError("'\(argument)' is not a target: give a host, or label=host with both parts non-empty.")
            }
            self.label = label
            self.host = host
        } else {
            guard !head.isEmpty else { throw RecorderError("an empty target was given: name a host or address.") }
            self.label = nil
            self.host = head
        }
        if parts.dropFirst().contains(where: \.isEmpty) {
            throw RecorderError("'\(argument)' has an empty option after a comma; remove the extra comma.")
        }
        self.options = try ProbeOptions(parsingTargetOptions: Array(parts.dropFirst()), argument: argument, labelled: label != nil)
        guard !host.contains(where: { $0 == " " || $0 == "/" }) else {
            throw RecorderError("'\(host)' is not a host name or address: give a name like example.com or an address like 192.0.2.1.")
        }
        if let zone = IPAddress.unknownZone(in: host) {
            throw RecorderError("'\(host)': this machine has no network interface named '\(zone)'; give one that `ip link` lists, as in fe80::1%eth0.")
        }
        try options.check(host: host, where: "'\(argument)'")
        try options.checkLocal(where: "'\(argument)'")
    }

    /// The target as probed: its own options over the global flags'.
    public func withDefaults(_ global: ProbeOptions) throws -> TargetSpec {
        var spec = self
        var defaults = global
        // A target's own source brings its family: the global -4/-6 is
        // for names without one. A global source of the other family than
        // the target's is refused below, never dropped silently.
        if options.source != nil { defaults.family = nil }
        spec.options = options.over(defaults)
        try spec.options.check(host: host, where: "target '\(name)'")
        return spec
    }
}

/// An error the user sees: one sentence that says what to do next.
public struct RecorderError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
