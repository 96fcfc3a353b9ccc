// Where serve listens. The page has no authentication, so by default it is
// reachable only from this machine; another address must be named exactly
// (a numeric address of this host), never reached by a wildcard or a name.
import Foundation

public struct ListenAddress: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// False for loopback; true when the page is reachable from elsewhere.
    public var isExposed: Bool

    public static let `default` = ListenAddress(host: "127.0.0.1", port: 8000, isExposed: false)

    /// The warning to print when the page is reachable from other machines.
    public var warning: String? {
        isExposed ? "pingem: warning: the page on \(host):\(port) has no authentication; anyone who can reach this address can read the recorded history." : nil
    }
}

public struct ListenError: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// Parses `--listen HOST:PORT` (`[v6]:PORT` for IPv6). nil gives the default.
/// Loopback addresses and `localhost` are accepted as they are; a numeric
/// non-loopback address is accepted (exposed); a wildcard (0.0.0.0, ::, an
/// empty host) or another host name is refused, because it does not name
/// which network the unauthenticated page appears on.
public func parseListen(_ text: String?) throws -> ListenAddress {
    guard let text else { return .default }
    var host: Substring, portText: Substring
    if text.hasPrefix("[") {
        guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
            throw ListenError(description: "--listen \(text): write an IPv6 address as [ADDRESS]:PORT, e.g. [::1]:8000.")
        }
        host = text[text.index(after: text.startIndex)..<close]
        portText = text[text.index(close, offsetBy: 2)...]
    } else {
        guard let colon = text.lastIndex(of: ":") else {
            throw ListenError(description: "--listen \(text): give HOST:PORT, e.g. 127.0.0.1:8000.")
        }
        host = text[..<colon]
        portText = text[text.index(after: colon)...]
    }
    guard let port = Int(portText), (1...65535).contains(port) else {
        throw ListenError(description: "--listen \(text): the port must be a number from 1 to 65535.")
    }
    let name = String(host)
    if name == "localhost" { return ListenAddress(host: "127.0.0.1", port: port, isExposed: false) }
    if let v4 = try System.ipv4Address(name) {
        let first = UInt32(bigEndian: v4.s_addr) >> 24
        if v4.s_addr == 0 { throw wildcard(text) }
        return ListenAddress(host: name, port: port, isExposed: first != 127)
    }
    if let v6 = try System.ipv6Address(name) {
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        if bytes.allSatisfy({ $0 == 0 }) { throw wildcard(text) }
        let loopback = bytes.dropLast().allSatisfy { $0 == 0 } && bytes.last == 1
        return ListenAddress(host: name, port: port, isExposed: !loopback)
    }
    if name.isEmpty || name == "*" { throw wildcard(text) }
    throw ListenError(description: "--listen \(text): give a numeric address (127.0.0.1, [::1] or this machine's address on one network), not a host name.")
}

private func wildcard(_ text: String) -> ListenError {
    ListenError(description: "--listen \(text) would show the unauthenticated page on every network: name the one address to listen on, e.g. 192.168.1.10:8000.")
}
