// The only caller of libc in Serve (swift-nio NIOPosix/System.swift style):
// the parsing of numeric listen addresses. inet_pton never blocks, so
// nothing here retries EINTR; a failure keeps the call's name and errno in
// Store's SystemCallError.

import Glibc
import Store

enum System {
    /// The IPv4 address written in `text` (dotted quad), nil if it is none.
    static func ipv4Address(_ text: String) throws(SystemCallError) -> in_addr? {
        try presentationToNetwork(family: AF_INET, text, as: in_addr())
    }

    /// The IPv6 address written in `text`, nil if it is none.
    static func ipv6Address(_ text: String) throws(SystemCallError) -> in6_addr? {
        try presentationToNetwork(family: AF_INET6, text, as: in6_addr())
    }

    /// inet_pton(3): 1 parsed, 0 not an address of the family, -1 (with
    /// errno) a family this libc does not know.
    private static func presentationToNetwork<Address>(family: Int32, _ text: String,
                                                       as empty: Address) throws(SystemCallError) -> Address? {
        var address = empty
        switch inet_pton(family, text, &address) {
        case 1: return address
        case 0: return nil
        default: throw SystemCallError(function: "inet_pton", errno: errno)
        }
    }
}
