// The only caller of libc socket functions (swift-nio NIOPosix/System.swift
// style). Every wrapper retries EINTR (a signal is not a failure), reports
// EAGAIN/EWOULDBLOCK as `.wouldBlock` where the fd is nonblocking, and
// otherwise throws a `SystemError` that keeps the call's name and errno.
// `close` is never retried: on Linux the fd is gone even when close reports
// EINTR, and retrying could close a descriptor another thread just got.

import Glibc

/// A failed system call: which one, and its errno.
public struct SystemError: Error, Equatable, CustomStringConvertible {
    public var function: String
    public var errno: Int32
    public init(function: String, errno: Int32) {
        self.function = function
        self.errno = errno
    }
    public var description: String {
        "\(function) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The result of an operation on a nonblocking fd.
enum IOResult<Value> {
    case processed(Value)
    case wouldBlock

    func map<T>(_ transform: (Value) -> T) -> IOResult<T> {
        switch self {
        case .processed(let value): return .processed(transform(value))
        case .wouldBlock: return .wouldBlock
        }
    }
}

/// `struct mmsghdr` (a msghdr, then the unsigned int msg_len the kernel
/// fills in), which Swift cannot import: its size and msg_len's offset as
/// the C compiler lays it out (56 and 64 bytes on 64-bit Linux).
enum MultipleMessages {
    static let lengthOffset = MemoryLayout<msghdr>.size
    static let stride = (MemoryLayout<msghdr>.size + MemoryLayout<UInt32>.size + MemoryLayout<msghdr>.alignment - 1)
        / MemoryLayout<msghdr>.alignment * MemoryLayout<msghdr>.alignment
    static let alignment = MemoryLayout<msghdr>.alignment
}

enum System {
    @inline(__always)
    private static func retryingEINTR<T: FixedWidthInteger>(_ function: String, _ body: () -> T) throws(SystemError) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let error = Glibc.errno
            if error == EINTR { continue }
            throw SystemError(function: function, errno: error)
        }
    }

    @inline(__always)
    private static func nonblocking<T: FixedWidthInteger>(_ function: String, _ body: () -> T) throws(SystemError) -> IOResult<T> {
        do {
            return .processed(try retryingEINTR(function, body))
        } catch where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
            return .wouldBlock
        }
    }

    static func socket(domain: Int32, type: Int32, protocol: Int32) throws(SystemError) -> Int32 {
        try retryingEINTR("socket") { Glibc.socket(domain, type, `protocol`) }
    }

    /// `value` is a plain C value (int, struct icmp6_filter as [UInt32], ...).
    static func setsockopt<Value: BitwiseCopyable>(_ fd: Int32, level: Int32, name: Int32, value: Value) throws(SystemError) {
        try withUnsafeBytes(of: value) { (bytes) throws(SystemError) in
            _ = try retryingEINTR("setsockopt") {
                Glibc.setsockopt(fd, level, name, bytes.baseAddress, socklen_t(bytes.count))
            }
        }
    }

    /// An option whose value is a byte string (SO_BINDTODEVICE's name).
    static func setsockopt(_ fd: Int32, level: Int32, name: Int32, bytes: [UInt8]) throws(SystemError) {
        // Array's withUnsafeBytes has no typed throws: carry the error out.
        try bytes.withUnsafeBytes { raw in
            Result { () throws(SystemError) in
                _ = try retryingEINTR("setsockopt") { Glibc.setsockopt(fd, level, name, raw.baseAddress, socklen_t(raw.count)) }
            }
        }.get()
    }

    static func bind(_ fd: Int32, address: UnsafePointer<sockaddr>, length: socklen_t) throws(SystemError) {
        _ = try retryingEINTR("bind") { Glibc.bind(fd, address, length) }
    }

    static func getsockname(_ fd: Int32, address: UnsafeMutablePointer<sockaddr>,
                            length: UnsafeMutablePointer<socklen_t>) throws(SystemError) {
        _ = try retryingEINTR("getsockname") { Glibc.getsockname(fd, address, length) }
    }

    static func fcntl(_ fd: Int32, command: Int32, argument: Int32) throws(SystemError) -> Int32 {
        try retryingEINTR("fcntl") { Glibc.fcntl(fd, command, argument) }
    }

    static func sendto(_ fd: Int32, bytes: UnsafeRawBufferPointer, flags: Int32,
                       address: UnsafePointer<sockaddr>, length: socklen_t) throws(SystemError) -> IOResult<Int> {
        try nonblocking("sendto") { Glibc.sendto(fd, bytes.baseAddress, bytes.count, flags, address, length) }
    }

    static func recvmsg(_ fd: Int32, message: UnsafeMutablePointer<msghdr>, flags: Int32) throws(SystemError) -> IOResult<Int> {
        try nonblocking("recvmsg") { Glibc.recvmsg(fd, message, flags) }
    }

    /// recvmmsg(2) into `count` `struct mmsghdr`s laid out by
    /// `MultipleMessages`; the number of messages read. nil when this libc
    /// has no recvmmsg (callers fall back to recvmsg).
    static func recvmmsg(_ fd: Int32, messages: UnsafeMutableRawPointer, count: Int, flags: Int32) throws(SystemError) -> IOResult<Int>? {
        guard let function = recvmmsgFunction else { return nil }
        return try nonblocking("recvmmsg") { function(fd, messages, UInt32(count), flags, nil) }.map(Int.init)
    }

    /// Glibc's Swift module hides recvmmsg and struct mmsghdr behind
    /// _GNU_SOURCE, so the symbol is looked up once (RTLD_DEFAULT is NULL).
    private typealias RecvmmsgFunction = @convention(c) (Int32, UnsafeMutableRawPointer?, UInt32, Int32, UnsafeMutableRawPointer?) -> Int32
    private static let recvmmsgFunction: RecvmmsgFunction? = dlsym(nil, "recvmmsg").map {
        unsafeBitCast($0, to: RecvmmsgFunction.self)
    }

    /// poll(2); an EINTR retries with what is left of the timeout, so a
    /// signal neither ends the wait early nor stretches it.
    static func poll(_ fds: UnsafeMutableBufferPointer<pollfd>, timeoutMilliseconds: Int32) throws(SystemError) -> Int32 {
        let deadline = timeoutMilliseconds < 0 ? nil : monotonicMilliseconds() + Int64(timeoutMilliseconds)
        var timeout = timeoutMilliseconds
        while true {
            let result = Glibc.poll(fds.baseAddress, nfds_t(fds.count), timeout)
            if result != -1 { return result }
            let error = Glibc.errno
            guard error == EINTR else { throw SystemError(function: "poll", errno: error) }
            if let deadline {
                timeout = Int32(clamping: max(0, deadline - monotonicMilliseconds()))
            }
        }
    }

    static func close(_ fd: Int32) throws(SystemError) {
        if Glibc.close(fd) == -1 {
            let error = Glibc.errno
            // EINTR: the fd is released anyway on Linux (close(2) NOTES).
            if error != EINTR { throw SystemError(function: "close", errno: error) }
        }
    }

    private static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

extension System {
    /// The index of the interface a zone names: its name ("eth0") or its
    /// index ("2"), as RFC 4007 section 11 allows; nil when there is none.
    static func interfaceIndex(_ zone: String) -> UInt32? {
        guard !zone.isEmpty else { return nil }
        let byName = if_nametoindex(zone)
        if byName != 0 { return byName }
        guard let index = UInt32(zone), index != 0, interfaceName(index) != nil else { return nil }
        return index
    }

    /// The name of interface `index`, nil once it is gone.
    static func interfaceName(_ index: UInt32) -> String? {
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(index, &name) != nil else { return nil }
        return name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

extension System {
    /// True when an interface of that name exists (SO_BINDTODEVICE takes
    /// names only, so an index is not accepted here).
    static func interfaceExists(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count < Int(IF_NAMESIZE) && if_nametoindex(name) != 0
    }

    /// The errno of binding a throwaway UDP socket to `address` (nil: it
    /// binds): EADDRNOTAVAIL says it is not an address of this machine. UDP
    /// needs no rights, so this works before the ICMP sockets are opened.
    static func bindFails(_ address: IPAddress) -> Int32? {
        let fd: Int32
        do {
            fd = try socket(domain: address.family == .v4 ? AF_INET : AF_INET6,
                            type: Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), protocol: 0)
        } catch {
            return error.errno
        }
        defer { try? close(fd) }
        do {
            try address.withSockaddr { (pointer, length) throws(SystemError) in try bind(fd, address: pointer, length: length) }
            return nil
        } catch {
            return error.errno
        }
    }
}

extension IPAddress {
    /// The address as a sockaddr_in or sockaddr_in6 (its zone in
    /// sin6_scope_id, port 0), for sendto and bind.
    func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> Result) throws(SystemError) -> Result {
        var storage = sockaddr_storage()
        let length: socklen_t
        switch family {
        case .v4:
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            withUnsafeMutableBytes(of: &address.sin_addr) { $0.copyBytes(from: bytes) }
            withUnsafeMutableBytes(of: &storage) { s in withUnsafeBytes(of: address) { s.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        case .v6:
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: bytes) }
            withUnsafeMutableBytes(of: &storage) { s in withUnsafeBytes(of: address) { s.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
        return try withUnsafePointer(to: &storage) { (pointer) throws(SystemError) -> Result in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(SystemError) -> Result in
                try body(address, length)
            }
        }
    }
}
