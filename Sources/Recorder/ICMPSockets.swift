// The real ICMPTransport: one ICMP socket per path (source, interface, TOS)
// and address family, all of one kind. Unprivileged datagram ("ping")
// sockets are preferred; raw sockets are the fallback when
// net.ipv4.ping_group_range excludes us.
//
// Every socket has an echo identifier of its own, and a socket keeps only
// what carries its identifier: an unbound raw socket sees the replies to
// every other socket's probes too, and those must never count for it.
//
// Invariant: the descriptors are fixed at init and closed once, by
// `close()`, which callers make only after their send and receive threads
// have stopped (a closed fd number may be reused by the next open).

import Glibc
import Synchronization

/// Opening ICMP sockets was refused: the user must change something.
public struct ICMPPermissionError: Error, CustomStringConvertible {
    public init() {}
    public var description: String {
        "Sending ICMP echo is not permitted: allow unprivileged ping sockets with "
            + "`sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`, or give the binary raw sockets with "
            + "`setcap cap_net_raw+ep PATH-TO-PINGEM`, or run pingem as root."
    }
}

/// None of the requested address families exists on this host.
public struct ICMPNoFamilyError: Error, CustomStringConvertible {
    public var requested: Set<IPFamily>
    public var description: String {
        let names = requested.sorted { $0.rawValue < $1.rawValue }.map { "IPv\($0.rawValue)" }.joined(separator: " and ")
        return "This host does not support \(names), so no target can be probed; check that the protocol is enabled in the kernel."
    }
}

/// Sendable without @unchecked: every stored property is an immutable `let`
/// of a Sendable type (the fds never change after init), an `Atomic` or a
/// `Mutex` (the receive scratch buffers), so
/// the sending and receiving threads can share one instance; the kernel
/// serialises what they do to the same fd.
public final class ICMPSockets: ICMPTransport {
    /// At most this many packets are read from one fd per `receive` call,
    /// so a flood on one socket cannot starve the caller's other work.
    public static let maximumPacketsPerSocketPerReceive = 256
    /// Asked for with SO_RCVBUF; the kernel caps it at net.core.rmem_max.
    static let receiveBufferBytes: Int32 = 1 << 20

    struct Socket: Sendable {
        let fd: Int32
        let family: IPFamily
        /// Index into the paths `open` was given.
        let path: Int
        let identifier: UInt16
    }

    public let kind: SocketKind
    public let families: Set<IPFamily>
    private let sockets: [Socket]
    private let closed = Atomic<Bool>(false)
    /// Only the receiving thread takes it; the lock just makes that safe.
    private let receiveBuffers: Mutex<ReceiveBuffers>

    private init(kind: SocketKind, sockets: [Socket], largestPayload: Int?) {
        self.kind = kind
        self.sockets = sockets
        self.families = Set(sockets.map(\.family))
        self.receiveBuffers = Mutex(ReceiveBuffers(largestPayload: largestPayload))
    }

    deinit { close() }

    /// Opens one socket per family in `families` for each of `paths` (a
    /// path with a source only for the source's family): datagram sockets
    /// if the kernel allows them for every family, else raw sockets. A
    /// family the kernel lacks entirely (EAFNOSUPPORT) is left out of
    /// `families`. `largestPayload`: the biggest echo payload that will be
    /// sent, which sizes the receive buffers (nil: any size).
    public static func open(families: Set<IPFamily>, paths: [ProbePath] = [.plain], largestPayload: Int? = nil) throws -> ICMPSockets {
        do {
            return try open(families: families, paths: paths, kind: .datagram, largestPayload: largestPayload)
        } catch let error as SystemError where isPermissionError(error) {
            do {
                return try open(families: families, paths: paths, kind: .raw, largestPayload: largestPayload)
            } catch let error as SystemError where isPermissionError(error) {
                throw ICMPPermissionError()
            }
        }
    }

    /// Opens sockets of one kind only (tests use this to pin the path).
    public static func open(families: Set<IPFamily>, paths: [ProbePath] = [.plain], kind: SocketKind,
                            largestPayload: Int? = nil) throws -> ICMPSockets {
        var opened: [Socket] = []
        do {
            for (index, path) in paths.enumerated() {
                for family in families.sorted(by: { $0.rawValue < $1.rawValue }) where path.source.map({ $0.family == family }) ?? true {
                    do {
                        let taken = Set(opened.map(\.identifier))
                        opened.append(try openSocket(family: family, kind: kind, path: path, index: index, taken: taken))
                    } catch where error.errno == EAFNOSUPPORT {
                        continue
                    }
                }
            }
        } catch {
            for socket in opened { try? System.close(socket.fd) }
            throw error
        }
        if opened.isEmpty && !families.isEmpty {
            throw ICMPNoFamilyError(requested: families)
        }
        return ICMPSockets(kind: kind, sockets: opened, largestPayload: largestPayload)
    }

    private static func isPermissionError(_ error: SystemError) -> Bool {
        error.errno == EACCES || error.errno == EPERM
    }

    /// `taken`: the identifiers of the sockets opened before, which a raw
    /// socket's own must differ from.
    private static func openSocket(family: IPFamily, kind: SocketKind, path: ProbePath, index: Int,
                                   taken: Set<UInt16>) throws(SystemError) -> Socket {
        let domain = family == .v4 ? AF_INET : AF_INET6
        let proto = family == .v4 ? Int32(IPPROTO_ICMP) : Int32(IPPROTO_ICMPV6)
        let type = (kind == .datagram ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_RAW.rawValue)) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = try System.socket(domain: domain, type: type, protocol: proto)
        do {
            let flags = try System.fcntl(fd, command: F_GETFL, argument: 0)
            _ = try System.fcntl(fd, command: F_SETFL, argument: flags | O_NONBLOCK)
            try System.setsockopt(fd, level: SOL_SOCKET, name: SO_RCVBUF, value: receiveBufferBytes)
            try System.setsockopt(fd, level: SOL_SOCKET, name: SO_TIMESTAMPNS, value: Int32(1))
            try apply(path, to: fd, family: family)
            let identifier: UInt16
            switch kind {
            case .datagram:
                // ICMP errors about our probes reach a ping socket only
                // through its error queue (ip(7) IP_RECVERR, ipv6(7)).
                if family == .v4 {
                    try System.setsockopt(fd, level: SOL_IP, name: IP_RECVERR, value: Int32(1))
                } else {
                    try System.setsockopt(fd, level: SOL_IPV6, name: IPV6_RECVERR, value: Int32(1))
                }
                identifier = try bindAnyIdentifier(fd, family: family, source: path.source)
            case .raw:
                try installFilter(fd, family: family)
                // The source address of our probes, and the only
                // destination this socket then receives for.
                if let source = path.source {
                    try source.withSockaddr { (address, length) throws(SystemError) in try System.bind(fd, address: address, length: length) }
                }
                // Raw sockets see every echo reply on the host: a random
                // non-zero identifier keeps us apart from other pingers.
                var random = UInt16.random(in: 1...UInt16.max)
                while taken.contains(random) { random = UInt16.random(in: 1...UInt16.max) }
                identifier = random
            }
            return Socket(fd: fd, family: family, path: index, identifier: identifier)
        } catch {
            try? System.close(fd)
            throw error
        }
    }

    /// Binds a ping socket to "port" 0 (of `source`, or of any address):
    /// the kernel picks a free echo identifier, unique among the ping
    /// sockets of the namespace, which getsockname reports as the port
    /// (net/ipv4/ping.c ping_get_port).
    private static func bindAnyIdentifier(_ fd: Int32, family: IPFamily, source: IPAddress?) throws(SystemError) -> UInt16 {
        let any = IPAddress(bytes: [UInt8](repeating: 0, count: family == .v4 ? 4 : 16))!
        try (source ?? any).withSockaddr { (address, length) throws(SystemError) in try System.bind(fd, address: address, length: length) }
        var storage = sockaddr_storage()
        return try withUnsafeMutablePointer(to: &storage) { (pointer) throws(SystemError) -> UInt16 in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(SystemError) -> UInt16 in
                var boundLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
                try System.getsockname(fd, address: address, length: &boundLength)
                // sin_port and sin6_port sit at the same offset, network order.
                let port = UnsafeRawPointer(address).loadUnaligned(fromByteOffset: 2, as: UInt16.self)
                return UInt16(bigEndian: port)
            }
        }
    }

    /// The interface (SO_BINDTODEVICE: sent by it whatever the routes say,
    /// and only what arrives on it received) and the TOS byte (IP_TOS, or
    /// the traffic class, IPV6_TCLASS) of a path.
    private static func apply(_ path: ProbePath, to fd: Int32, family: IPFamily) throws(SystemError) {
        if let interface = path.interface {
            var name = [UInt8](repeating: 0, count: Int(IF_NAMESIZE))
            name.replaceSubrange(0..<min(interface.utf8.count, name.count - 1), with: interface.utf8.prefix(name.count - 1))
            try System.setsockopt(fd, level: SOL_SOCKET, name: SO_BINDTODEVICE, bytes: name)
        }
        if let tos = path.tos {
            if family == .v4 {
                try System.setsockopt(fd, level: Int32(IPPROTO_IP), name: IP_TOS, value: Int32(tos))
            } else {
                try System.setsockopt(fd, level: Int32(IPPROTO_IPV6), name: IPV6_TCLASS, value: Int32(tos))
            }
        }
    }

    /// Kernel-side filters so the raw socket is not woken for every ICMP
    /// packet the host receives. Both filters are bitmaps where a set bit
    /// BLOCKS the type (raw(7) ICMP_FILTER; ICMP6_FILTER per RFC 3542
    /// section 3.2, stored inverted by Linux just like ICMP_FILTER).
    private static func installFilter(_ fd: Int32, family: IPFamily) throws(SystemError) {
        switch family {
        case .v4:
            let passed: [ICMPType] = [.echoReply, .destinationUnreachable, .sourceQuench, .timeExceeded, .parameterProblem]
            var blocked = UInt32.max
            for type in passed { blocked &= ~(UInt32(1) << UInt32(type.rawValue)) }
            try System.setsockopt(fd, level: SOL_RAW, name: 1 /* ICMP_FILTER */, value: blocked)
        case .v6:
            let passed: [ICMPType] = [.v6EchoReply, .v6DestinationUnreachable, .v6PacketTooBig, .v6TimeExceeded, .v6ParameterProblem]
            var words = [UInt32](repeating: .max, count: 8)
            for type in passed {
                words[Int(type.rawValue >> 5)] &= ~(UInt32(1) << UInt32(type.rawValue & 31))
            }
            let filter = (words[0], words[1], words[2], words[3], words[4], words[5], words[6], words[7])
            try System.setsockopt(fd, level: Int32(IPPROTO_ICMPV6), name: 1 /* ICMP6_FILTER */, value: filter)
        }
    }

    // MARK: ICMPTransport

    public func identifier(for family: IPFamily, path: Int) -> UInt16 {
        sockets.first { $0.family == family && $0.path == path }?.identifier ?? 0
    }

    public func sendEcho(to destination: IPAddress, path: Int, sequence: UInt16, payload: [UInt8], hopLimit: Int?) -> Int32? {
        guard !closed.load(ordering: .acquiring) else { return EBADF }
        guard let socket = sockets.first(where: { $0.family == destination.family && $0.path == path }) else { return EAFNOSUPPORT }
        let message = ICMPEcho.request(family: socket.family, identifier: socket.identifier, sequence: sequence,
                                       payload: payload, computeChecksum: kind == .raw)
        guard let hopLimit else { return send(message, on: socket, to: destination) }
        // The socket's TTL for this one request, then its default again (-1,
        // ip(7) / ipv6(7)): only the sender thread sends, so no other request
        // can leave in between.
        let (level, name) = socket.family == .v4 ? (Int32(IPPROTO_IP), IP_TTL) : (Int32(IPPROTO_IPV6), IPV6_UNICAST_HOPS)
        do { try System.setsockopt(socket.fd, level: level, name: name, value: Int32(hopLimit)) } catch { return error.errno }
        defer { try? System.setsockopt(socket.fd, level: level, name: name, value: Int32(-1)) }
        return send(message, on: socket, to: destination)
    }

    /// The errnos an ICMP error leaves pending on the socket (the kernel's
    /// icmp_err_convert, and EHOSTUNREACH for time exceeded, EPROTO for a
    /// parameter problem).
    static let pendingICMPErrnos: Set<Int32> = [ENETUNREACH, EHOSTUNREACH, ENOPROTOOPT, ECONNREFUSED, EMSGSIZE,
                                                EOPNOTSUPP, ENONET, EACCES, EHOSTDOWN, EPROTO]

    /// Sends once more when the first call failed with an errno an ICMP
    /// error may have left pending: an error for an earlier probe sets the
    /// socket's sk_err (ping_err with IP_RECVERR; raw_err for hard errors),
    /// and the next sendto reports and clears it without sending (seen as
    /// EHOSTUNREACH on the probe right after a time exceeded came back, in
    /// the middle of a path round). A real error, no route or the link down,
    /// fails again the same way; the error queue keeps the ICMP error itself.
    private func send(_ message: [UInt8], on socket: Socket, to destination: IPAddress) -> Int32? {
        let error = sendOnce(message, on: socket, to: destination)
        guard let error, Self.pendingICMPErrnos.contains(error) else { return error }
        return sendOnce(message, on: socket, to: destination)
    }

    private func sendOnce(_ message: [UInt8], on socket: Socket, to destination: IPAddress) -> Int32? {
        do {
            let result = try destination.withSockaddr { (address, length) throws(SystemError) in
                // Array's withUnsafeBytes has no typed throws: carry the error out.
                try message.withUnsafeBytes { bytes in
                    Result { () throws(SystemError) in try System.sendto(socket.fd, bytes: bytes, flags: 0, address: address, length: length) }
                }.get()
            }
            switch result {
            case .processed: return nil
            // A full send buffer: this probe is not sent; the engine records why.
            case .wouldBlock: return EAGAIN
            }
        } catch {
            return error.errno
        }
    }

    public func receive(timeoutMilliseconds: Int32) -> [Incoming] {
        // With no sockets poll still waits out the timeout, so a caller's
        // receive loop never spins.
        guard !closed.load(ordering: .acquiring) else { return [] }
        var pollfds = sockets.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        let ready: Int32
        do {
            ready = try pollfds.withUnsafeMutableBufferPointer { (buffer) throws(SystemError) -> Int32 in
                try System.poll(buffer, timeoutMilliseconds: timeoutMilliseconds)
            }
        } catch {
            return []
        }
        guard ready > 0 else { return [] }

        return receiveBuffers.withLock { buffers in
            var received: [Incoming] = []
            for (socket, entry) in zip(sockets, pollfds) where entry.revents != 0 {
                // POLLERR is how a ping socket says its error queue is not
                // empty; raw sockets without IP_RECVERR never queue there.
                if kind == .datagram && entry.revents & Int16(POLLERR) != 0 {
                    drainErrorQueue(socket, buffers: buffers, into: &received)
                }
                // Also on POLLERR alone: an ICMP error sets the socket's
                // pending error (sk_err) on raw sockets too (raw_err), and only
                // a receive clears it; left set, poll would return at once
                // forever and the caller would spin.
                if entry.revents & Int16(POLLIN | POLLERR) != 0 {
                    drain(socket, buffers: buffers, into: &received)
                }
            }
            return received
        }
    }

    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for socket in sockets { try? System.close(socket.fd) }
    }

    // MARK: Receiving

    /// Reads the normal queue, many datagrams per system call (recvmmsg):
    /// each keeps its own msg_name, control messages and so its own kernel
    /// receive stamp. A short count means the queue was empty, so no extra
    /// call is made just to hear EAGAIN.
    private func drain(_ socket: Socket, buffers: ReceiveBuffers, into received: inout [Incoming]) {
        var remaining = Self.maximumPacketsPerSocketPerReceive
        while remaining > 0 {
            let asked = min(remaining, buffers.count)
            let result: IOResult<Int>
            do {
                guard let batch = try System.recvmmsg(socket.fd, messages: buffers.prepare(asked), count: asked, flags: 0) else {
                    drainOneByOne(socket, buffers: buffers, remaining: remaining, into: &received)
                    return
                }
                result = batch
            } catch {
                // A socket with a pending ICMP error reports it once from a
                // normal receive (sk_err, ip(7) IP_RECVERR); the error queue
                // holds the details, so just keep reading. Errors about the
                // call itself end the drain.
                if [EBADF, EFAULT, EINVAL, ENOTSOCK, ENOMEM, ENOSYS].contains(error.errno) { return }
                remaining -= 1
                continue
            }
            guard case .processed(let count) = result, count > 0 else { return }
            for index in 0..<count {
                received.append(parse(socket, errorQueue: false, buffers: buffers, index: index, count: buffers.length(index)))
            }
            remaining -= count
            if count < asked { return }
        }
    }

    /// recvmsg, one datagram per call: where libc lacks recvmmsg.
    private func drainOneByOne(_ socket: Socket, buffers: ReceiveBuffers, remaining: Int, into received: inout [Incoming]) {
        for _ in 0..<remaining {
            let result: IOResult<Int>
            do {
                buffers.prepare(1)
                result = try System.recvmsg(socket.fd, message: buffers.header(0), flags: 0)
            } catch {
                if [EBADF, EFAULT, EINVAL, ENOTSOCK, ENOMEM].contains(error.errno) { return }
                continue
            }
            guard case .processed(let count) = result else { return }
            received.append(parse(socket, errorQueue: false, buffers: buffers, index: 0, count: count))
        }
    }

    /// The error queue of a ping socket: rare, one recvmsg per message.
    private func drainErrorQueue(_ socket: Socket, buffers: ReceiveBuffers, into received: inout [Incoming]) {
        for _ in 0..<Self.maximumPacketsPerSocketPerReceive {
            buffers.prepare(1)
            guard case .processed(let count)? = try? System.recvmsg(socket.fd, message: buffers.header(0), flags: Int32(MSG_ERRQUEUE))
            else { return }
            received.append(parse(socket, errorQueue: true, buffers: buffers, index: 0, count: count))
        }
    }

    private func parse(_ socket: Socket, errorQueue: Bool, buffers: ReceiveBuffers, index: Int, count: Int) -> Incoming {
        let packet = buffers.packet(index, count: count)
        let control = PacketParser.controlMessages(buffers.control(index))
        let name = buffers.name(index).flatMap(PacketParser.address(fromSockaddr:))
        let incoming: Incoming
        switch (kind, errorQueue, socket.family) {
        case (_, true, _):
            if let extendedError = control.extendedError, let name {
                incoming = PacketParser.errorQueue(extendedError: extendedError, quoted: packet, destination: name,
                                                   kernelReceivedNs: control.kernelReceivedNs)
            } else {
                incoming = .foreign
            }
        case (.raw, false, .v4):
            incoming = PacketParser.rawIPv4(packet, kernelReceivedNs: control.kernelReceivedNs)
        case (.raw, false, .v6):
            incoming = name.map { PacketParser.rawIPv6(packet, from: $0, kernelReceivedNs: control.kernelReceivedNs) } ?? .foreign
        case (.datagram, false, _):
            incoming = name.map { PacketParser.datagram(packet, from: $0, kernelReceivedNs: control.kernelReceivedNs) } ?? .foreign
        }
        return Self.keepingOnly(identifier: socket.identifier, family: socket.family, incoming)
    }

    /// Raw sockets get every echo reply and error on the host; a ping socket
    /// only ours, but we check there too. Anything for another identifier
    /// or about the other family is someone else's.
    static func keepingOnly(identifier: UInt16, family: IPFamily, _ incoming: Incoming) -> Incoming {
        switch incoming {
        case .echoReply(let from, let id, _, _, _) where id == identifier && from.family == family:
            return incoming
        case .icmpError(let errorFamily, _, _, _, _, let id, _, _, _) where id == identifier && errorFamily == family:
            return incoming
        default:
            return .foreign
        }
    }
}

/// Scratch memory for recvmmsg/recvmsg: `count` slots of packet, control
/// and name buffers with their iovecs and `struct mmsghdr`s, allocated once
/// per ICMPSockets and reused by every receive (the caller holds the lock
/// around it, so only one thread ever uses it at a time).
final class ReceiveBuffers {
    /// Datagrams read per recvmmsg call.
    let count: Int
    /// Bytes kept of each datagram; larger ones are cut (MSG_TRUNC), which
    /// only a packet that cannot be ours can be (see `messageBytes`).
    let messageBytes: Int
    // Room for a timestamp and an extended error with its offender (< 128).
    static let controlBytes = 512
    let packets: UnsafeMutableRawBufferPointer
    let controls: UnsafeMutableRawBufferPointer
    let names: UnsafeMutablePointer<sockaddr_storage>
    let vectors: UnsafeMutablePointer<iovec>
    let headers: UnsafeMutableRawPointer

    /// `largestPayload`: the biggest echo payload the caller sends, nil for
    /// any (up to the 65535-byte IP packet).
    init(largestPayload: Int?) {
        // Our reply: IPv4 header (at most 60) + echo header (8) + payload.
        // ICMP errors are at most 576 (IPv4, RFC 1812 4.3.2.3) or 1280
        // bytes (RFC 4443 2.4), so 2048 keeps every one whole.
        let bytes = largestPayload.map { max(2048, ($0 + 60 + 8 + 7) / 8 * 8) } ?? 65_536
        messageBytes = min(bytes, 65_536)
        // At most 256 KiB of packet buffers, at most 64 datagrams per call.
        count = max(1, min(64, 262_144 / messageBytes))
        packets = .allocate(byteCount: count * messageBytes, alignment: 8)
        controls = .allocate(byteCount: count * Self.controlBytes, alignment: 8)
        names = .allocate(capacity: count)
        vectors = .allocate(capacity: count)
        headers = .allocate(byteCount: count * MultipleMessages.stride, alignment: MultipleMessages.alignment)
    }

    deinit {
        packets.deallocate()
        controls.deallocate()
        names.deallocate()
        vectors.deallocate()
        headers.deallocate()
    }

    func header(_ index: Int) -> UnsafeMutablePointer<msghdr> {
        (headers + index * MultipleMessages.stride).assumingMemoryBound(to: msghdr.self)
    }

    /// Resets the first `n` slots for a receive; returns the mmsghdr array
    /// (whose first element is also a plain msghdr for recvmsg).
    @discardableResult
    func prepare(_ n: Int) -> UnsafeMutableRawPointer {
        for index in 0..<n {
            (names + index).initialize(to: sockaddr_storage())
            (vectors + index).initialize(to: iovec(iov_base: packets.baseAddress! + index * messageBytes, iov_len: messageBytes))
            var message = msghdr()
            message.msg_name = UnsafeMutableRawPointer(names + index)
            message.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            message.msg_iov = vectors + index
            message.msg_iovlen = 1
            message.msg_control = controls.baseAddress! + index * Self.controlBytes
            message.msg_controllen = Self.controlBytes
            message.msg_flags = 0
            let slot = headers + index * MultipleMessages.stride
            slot.initializeMemory(as: msghdr.self, to: message)
            (slot + MultipleMessages.lengthOffset).storeBytes(of: UInt32(0), as: UInt32.self)
        }
        return headers
    }

    /// msg_len of slot `index` after recvmmsg: the datagram's true length.
    func length(_ index: Int) -> Int {
        Int((headers + index * MultipleMessages.stride + MultipleMessages.lengthOffset).load(as: UInt32.self))
    }

    func packet(_ index: Int, count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: packets.baseAddress! + index * messageBytes, count: min(count, messageBytes)))
    }

    func control(_ index: Int) -> [UInt8] {
        let length = min(Int(header(index).pointee.msg_controllen), Self.controlBytes)
        return Array(UnsafeRawBufferPointer(start: controls.baseAddress! + index * Self.controlBytes, count: length))
    }

    func name(_ index: Int) -> [UInt8]? {
        let length = min(Int(header(index).pointee.msg_namelen), MemoryLayout<sockaddr_storage>.size)
        guard length > 0 else { return nil }
        return Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(names + index), count: length))
    }
}
