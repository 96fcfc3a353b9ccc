// How a target is probed beyond its host: the address family a name is
// resolved to, the local source address and interface the probes leave by,
// and their TOS / traffic class byte. Given globally (-4, -6, --source,
// --interface, --tos) or per target after the host ("isp1=192.0.2.1,
// interface=eth0"); a per-target option wins over the global one.
//
// The per-target syntax is parsed here and nowhere else: a line of a
// targets file is exactly one command-line target argument.

import Glibc

public struct ProbeOptions: Sendable, Hashable {
    /// The family a name is resolved to; nil: the first address the system
    /// resolver prefers (getaddrinfo order, as ping does).
    public var family: IPFamily?
    /// The local address the probes are sent from (bind).
    public var source: IPAddress?
    /// The interface the probes leave by (SO_BINDTODEVICE).
    public var interface: String?
    /// The whole TOS byte (IPv4) or traffic class (IPv6): DSCP in the top
    /// six bits, as ping's -Q takes it.
    public var tos: UInt8?

    public init(family: IPFamily? = nil, source: IPAddress? = nil, interface: String? = nil, tos: UInt8? = nil) {
        self.family = family; self.source = source; self.interface = interface; self.tos = tos
    }

    /// These options, with `defaults` filling in what they leave unset.
    public func over(_ defaults: ProbeOptions) -> ProbeOptions {
        ProbeOptions(family: family ?? defaults.family, source: source ?? defaults.source,
                     interface: interface ?? defaults.interface, tos: tos ?? defaults.tos)
    }

    /// The family the probes must use: the chosen one, else the source's.
    public var requiredFamily: IPFamily? { family ?? source?.family }

    /// What picks a socket: probes that differ in any of these cannot
    /// share one, the family aside (each path has a socket per family).
    public var path: ProbePath { ProbePath(source: source, interface: interface, tos: tos) }

    /// Refuses a combination no probe can be sent with, in one sentence;
    /// `where` names the flag or target the options came from.
    func check(host: String?, where place: String) throws {
        if let source, let family, source.family != family {
            throw RecorderError("\(place): source \(source.text) is an IPv\(source.family.rawValue) address but IPv\(family.rawValue) was chosen; give a source of the target's family.")
        }
        if let host, let literal = IPAddress(parsing: host), let required = requiredFamily, literal.family != required {
            let why = family == required ? "IPv\(required.rawValue) was chosen" : "the source \(source!.text) is IPv\(required.rawValue)"
            throw RecorderError("\(place): \(host) is an IPv\(literal.family.rawValue) address but \(why); drop the choice or give an address of that family.")
        }
    }

    /// Refuses global flags that cannot go together or name what this
    /// machine lacks (record, and watch before it starts one).
    public func checkGlobal() throws {
        try check(host: nil, where: "-\(family?.rawValue ?? 0) with --source")
        try checkLocal(where: nil)
    }

    /// Checks against this machine what only it can say: that the
    /// interface exists and the source is one of its own addresses. Done
    /// before any socket is opened, so a typo never sends a probe. `place`
    /// names the target; nil: these are the global flags.
    func checkLocal(where place: String?) throws {
        if let interface, !System.interfaceExists(interface) {
            throw RecorderError("\(place ?? "--interface"): this machine has no network interface named '\(interface)'; give one that `ip link` lists.")
        }
        if let source, let errno = System.bindFails(source) {
            let why = errno == EADDRNOTAVAIL ? "is not an address of this machine" : "cannot be bound (\(String(cString: strerror(errno))))"
            throw RecorderError("\(place ?? "--source"): source \(source.text) \(why); give one that `ip address` lists.")
        }
    }
}

/// The socket-level part of ProbeOptions: one set of sockets per path.
public struct ProbePath: Sendable, Hashable {
    public var source: IPAddress?
    public var interface: String?
    public var tos: UInt8?
    public init(source: IPAddress? = nil, interface: String? = nil, tos: UInt8? = nil) {
        self.source = source; self.interface = interface; self.tos = tos
    }
    /// The plain path: no source, interface or TOS.
    public static let plain = ProbePath()
}

extension ProbeOptions {
    /// Parses the comma-separated options after a target's host: `4`, `6`,
    /// `source=ADDR`, `interface=NAME`, `tos=VALUE`.
    /// `labelled`: the head was label=host, so an unknown "x=y" item cannot
    /// be the rest of a label that held a comma.
    init(parsingTargetOptions items: [Substring], argument: String, labelled: Bool) throws {
        self.init()
        for item in items {
            let (key, value): (Substring, Substring?) = item.firstIndex(of: "=").map {
                (item[..<$0], item[item.index(after: $0)...])
            } ?? (item, nil)
            func required() throws -> String {
                guard let value, !value.isEmpty else {
                    throw RecorderError("'\(argument)': the option \(key)= needs a value, as in \(key)=\(Self.example(key)).")
                }
                return String(value)
            }
            switch key {
            case "4", "6":
                guard value == nil else { throw Self.unknown(item, argument, labelled: labelled) }
                let chosen: IPFamily = key == "4" ? .v4 : .v6
                if let family, family != chosen {
                    throw RecorderError("'\(argument)': 4 and 6 were both given; choose one family per target (make two targets to probe both).")
                }
                family = chosen
            case "source":
                let text = try required()
                guard let address = IPAddress(parsing: text) else {
                    throw RecorderError("'\(argument)': source=\(text) is not an IP address; give a numeric local address such as source=192.0.2.10.")
                }
                source = address
            case "interface":
                interface = try required()
            case "tos":
                tos = try Self.parseTOS(try required(), where: "'\(argument)'")
            default:
                throw Self.unknown(item, argument, labelled: labelled)
            }
        }
    }

    private static func unknown(_ item: Substring, _ argument: String, labelled: Bool) -> RecorderError {
        // "a,b=host" reads as host "a" with the option "b=host": say why.
        let label = !labelled && item.contains("=") ? " (a label cannot contain a comma, which starts the options)" : ""
        return RecorderError("'\(argument)': '\(item)' is not a target option\(label); use 4, 6, source=ADDR, interface=NAME or tos=VALUE.")
    }

    private static func example(_ key: Substring) -> String {
        switch key {
        case "source": return "192.0.2.10"
        case "interface": return "eth0"
        default: return "ef"
        }
    }

    /// DSCP class names (RFC 2474 class selectors, RFC 2597 AF, RFC 3246
    /// EF, RFC 5865 VOICE-ADMIT, RFC 8622 LE) to their six-bit codepoints.
    static let dscpClasses: [String: UInt8] = {
        var classes: [String: UInt8] = ["ef": 46, "va": 44, "le": 1]
        for n in 0...7 { classes["cs\(n)"] = UInt8(n * 8) }
        for c in 1...4 {
            for p in 1...3 { classes["af\(c)\(p)"] = UInt8(c * 8 + p * 2) }
        }
        return classes
    }()

    /// A TOS byte: decimal 0-255, 0x hex, or a DSCP class name (which sets
    /// the six DSCP bits, ECN left 0: ef is 0xb8).
    public static func parseTOS(_ text: String, where place: String) throws -> UInt8 {
        let lower = text.lowercased()
        if let dscp = dscpClasses[lower] { return dscp << 2 }
        let hex = lower.hasPrefix("0x")
        let digits = hex ? lower.dropFirst(2) : Substring(lower)
        // Digits only: Swift's integer parsing would also take "+5" and "-0".
        let value = digits.allSatisfy(\.isHexDigit) ? UInt8(digits, radix: hex ? 16 : 10) : nil
        guard let value else {
            throw RecorderError("\(place): tos '\(text)' is not a TOS value; give 0-255, hex as 0xb8, or a DSCP class such as ef, af41 or cs1.")
        }
        return value
    }
}
