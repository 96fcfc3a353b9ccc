import Foundation
import Glibc
import Synchronization
import Testing
@testable import pingem_responder

// The responder is the ground truth the end-to-end tests trust, so it is
// tested on its own first, from ICMP datagram sockets inside its namespace:
// the kernel verifies every checksum before delivering to such a socket,
// so a reply that arrives here was well-formed on the wire.

/// setns(2) with CLONE_NEWNET (0x40000000). Glibc declares setns only under
/// _GNU_SOURCE, which Swift's Glibc module does not see, so look it up.
func setNetworkNamespace(_ fd: Int32) -> Int32 {
    typealias SetNS = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0) /* RTLD_DEFAULT */, "setns") else {
        errno = ENOSYS
        return -1
    }
    return unsafeBitCast(symbol, to: SetNS.self)(fd, 0x4000_0000)
}

/// An ICMP datagram socket created inside `namespace`: setns changes only
/// the calling thread's namespace, so a throwaway thread joins it and
/// creates the socket, which stays in that namespace wherever it is used.
func pingSocket(in namespace: TestNamespace, family: Int32) throws -> Int32 {
    let result = Mutex<Result<Int32, E2EError>?>(nil)
    let name = namespace.name
    let thread = Thread {
        let nsFD = open("/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
        guard nsFD >= 0, setNetworkNamespace(nsFD) == 0 else {
            let message = String(cString: strerror(errno))
            result.withLock { $0 = .failure(E2EError("setns \(name): \(message)")) }
            return
        }
        close(nsFD)
        let proto = family == AF_INET ? Int32(IPPROTO_ICMP) : Int32(IPPROTO_ICMPV6)
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue), proto)
        let message = String(cString: strerror(errno))
        result.withLock { $0 = fd >= 0 ? .success(fd) : .failure(E2EError("ping socket: \(message)")) }
    }
    thread.start()
    while result.withLock({ $0 == nil }) { usleep(1000) }
    let fd = try result.withLock { $0! }.get()
    // Queue ICMP errors with their details (IP_RECVERR = 11, IPV6_RECVERR = 25).
    var on: Int32 = 1
    if family == AF_INET {
        setsockopt(fd, Int32(IPPROTO_IP), 11, &on, socklen_t(MemoryLayout<Int32>.size))
    } else {
        setsockopt(fd, Int32(IPPROTO_IPV6), 25, &on, socklen_t(MemoryLayout<Int32>.size))
    }
    return fd
}

/// A pingem-shaped payload: "PGEM", run id, target index, sequence, padding.
func pingemPayload(runID: UInt64, targetIndex: UInt32, sequence: UInt64, size: Int = 40) -> [UInt8] {
    var bytes = Array("PGEM".utf8)
    for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(runID >> UInt64(shift) & 0xFF)) }
    for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(targetIndex >> UInt32(shift) & 0xFF)) }
    for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(sequence >> UInt64(shift) & 0xFF)) }
    while bytes.count < size { bytes.append(UInt8(bytes.count & 0xFF)) }
    return bytes
}

func sendEcho(fd: Int32, to address: String, sequence: UInt16, payload: [UInt8]) throws {
    // The kernel fills in the identifier and the checksum on a ping socket.
    let v4 = !address.contains(":")
    var message: [UInt8] = [v4 ? 8 : 128, 0, 0, 0, 0, 0, UInt8(sequence >> 8), UInt8(sequence & 0xFF)]
    message += payload
    /// sendto with `target` (a sockaddr_in or sockaddr_in6) as the address.
    func send<Address>(to target: Address) -> Int {
        withUnsafePointer(to: target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, message, message.count, 0, $0, socklen_t(MemoryLayout<Address>.size))
            }
        }
    }
    let sent: Int
    if v4 {
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, address, &target.sin_addr)
        sent = send(to: target)
    } else {
        var target = sockaddr_in6()
        target.sin6_family = sa_family_t(AF_INET6)
        inet_pton(AF_INET6, address, &target.sin6_addr)
        sent = send(to: target)
    }
    if sent != message.count { throw E2EError("sendto \(address): \(String(cString: strerror(errno)))") }
}

enum Received {
    case message([UInt8])
    case error(Int32)
    case nothing
}

/// The next ICMP message or pending socket error within `timeout` ms.
func receive(fd: Int32, timeout: Int32) -> Received {
    var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    guard poll(&pollFD, 1, timeout) > 0 else { return .nothing }
    var buffer = [UInt8](repeating: 0, count: 2048)
    let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
    if count < 0 { return .error(errno) }
    return .message(Array(buffer[0..<count]))
}

/// One queued ICMP error (struct sock_extended_err) and its offender address.
struct QueuedError {
    var errno: UInt32, origin: UInt8, type: UInt8, code: UInt8
    var offender: String
}

func readErrorQueue(fd: Int32) -> QueuedError? {
    var data = [UInt8](repeating: 0, count: 2048)
    var control = [UInt8](repeating: 0, count: 512)
    return data.withUnsafeMutableBytes { dataBytes in
        control.withUnsafeMutableBytes { controlBytes -> QueuedError? in
            var vector = iovec(iov_base: dataBytes.baseAddress, iov_len: dataBytes.count)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer -> QueuedError? in
                var header = msghdr()
                header.msg_iov = vectorPointer
                header.msg_iovlen = 1
                header.msg_control = controlBytes.baseAddress
                header.msg_controllen = controlBytes.count
                guard recvmsg(fd, &header, Int32(MSG_ERRQUEUE | MSG_DONTWAIT)) >= 0,
                      header.msg_controllen >= 16 + 16 else { return nil }
                // One cmsghdr (len: 8 bytes, level: 4, type: 4) then
                // sock_extended_err {u32 errno; u8 origin, type, code, pad;
                // u32 info, data} and the offender's sockaddr after it.
                let c = Array(controlBytes[0..<header.msg_controllen])
                let ee = 16
                let errnoValue = UInt32(c[ee]) | UInt32(c[ee + 1]) << 8 | UInt32(c[ee + 2]) << 16 | UInt32(c[ee + 3]) << 24
                let offenderAt = ee + 16
                let family = Int32(c[offenderAt]) | Int32(c[offenderAt + 1]) << 8
                var offender = ""
                if family == AF_INET, c.count >= offenderAt + 8 {
                    offender = c[(offenderAt + 4)..<(offenderAt + 8)].map(String.init).joined(separator: ".")
                } else if family == AF_INET6, c.count >= offenderAt + 24 {
                    var text = [CChar](repeating: 0, count: 64)
                    let raw = Array(c[(offenderAt + 8)..<(offenderAt + 24)])
                    _ = raw.withUnsafeBytes { inet_ntop(AF_INET6, $0.baseAddress, &text, 64) }
                    offender = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                }
                return QueuedError(errno: errnoValue, origin: c[ee + 4], type: c[ee + 5], code: c[ee + 6], offender: offender)
            }
        }
    }
}

/// All messages or errors for one probe until `quiet` ms pass with nothing.
func collect(fd: Int32, quiet: Int32 = 300) -> [Received] {
    var all: [Received] = []
    while true {
        let next = receive(fd: fd, timeout: quiet)
        switch next {
        case .nothing: return all
        // poll reports POLLERR while the error queue holds an entry even
        // after recv has returned the socket error once: stop there.
        case .error(let code) where code == EAGAIN: return all
        default: all.append(next)
        }
    }
}

@Suite(.serialized) struct ResponderTests {
    static let runID: UInt64 = 0x0123_4567_89AB_CDEF

    @Test func answersCleanGarbageUnreachableAndLossyAsConfigured() throws {
        let namespace = try TestNamespace(pingSockets: true)
        defer { namespace.destroy() }
        let responder = try namespace.startResponder([
            .init(address: "198.18.0.10", behaviour: .clean),
            .init(address: "fd00:18::10", behaviour: .clean),
            .init(address: "198.18.0.12", behaviour: .lossy, seed: 7, loss_percent: 50),
            .init(address: "198.18.0.16", behaviour: .unreachable),
            .init(address: "fd00:18::16", behaviour: .unreachable),
            .init(address: "198.18.0.17", behaviour: .garbageFirst),
            .init(address: "fd00:18::17", behaviour: .garbageFirst, cut_bytes: 12),
        ])
        let probes = 6
        var repliedSequences: [String: [UInt64]] = [:]
        for (index, address) in ["198.18.0.10", "fd00:18::10", "198.18.0.12", "198.18.0.16",
                                 "fd00:18::16", "198.18.0.17", "fd00:18::17"].enumerated() {
            let v4 = !address.contains(":")
            let fd = try pingSocket(in: namespace, family: v4 ? AF_INET : AF_INET6)
            defer { close(fd) }
            for sequence in 0..<probes {
                let seq64 = UInt64(1000 + sequence)
                let payload = pingemPayload(runID: Self.runID, targetIndex: UInt32(index), sequence: seq64)
                try sendEcho(fd: fd, to: address, sequence: UInt16(sequence), payload: payload)
                let got = collect(fd: fd, quiet: address.hasSuffix("17") ? 200 : 100)
                let messages = got.compactMap { if case .message(let m) = $0 { m } else { nil } }
                let errors = got.compactMap { if case .error(let e) = $0 { e } else { nil } }
                let replyType: UInt8 = v4 ? 0 : 129
                for message in messages {
                    #expect(message[0] == replyType && message[1] == 0, "\(address): type \(message[0])")
                    #expect(Int(message[6]) << 8 | Int(message[7]) == sequence, "\(address): sequence")
                }
                switch address {
                case "198.18.0.16", "fd00:18::16":
                    #expect(messages.isEmpty)
                    #expect(errors == [EHOSTUNREACH], "\(address): \(errors)")
                    let queued = try #require(readErrorQueue(fd: fd), "\(address): no queued ICMP error")
                    if v4 {
                        #expect((queued.origin, queued.type, queued.code) == (2, 3, 1))
                        #expect(queued.offender == "198.18.0.254")
                    } else {
                        #expect((queued.origin, queued.type, queued.code) == (3, 1, 3))
                        #expect(queued.offender == "fd00:18::fe")
                    }
                case "198.18.0.17", "fd00:18::17":
                    // Zeroed payload, then cut, then the true reply 20 ms later.
                    try #require(messages.count == 3, "\(address): \(messages.count) messages")
                    #expect(Array(messages[0].dropFirst(8)) == [UInt8](repeating: 0, count: payload.count))
                    #expect(Array(messages[1].dropFirst(8)) == (v4 ? [] : Array(payload.prefix(12))))
                    #expect(Array(messages[2].dropFirst(8)) == payload)
                default:
                    #expect(errors.isEmpty)
                    #expect(messages.count <= 1)
                    if let reply = messages.first {
                        #expect(Array(reply.dropFirst(8)) == payload, "\(address): payload echoed")
                        repliedSequences[address, default: []].append(seq64)
                    }
                }
            }
        }
        #expect(repliedSequences["198.18.0.10"]?.count == probes)
        #expect(repliedSequences["fd00:18::10"]?.count == probes)

        let log = try responder.stop()
        #expect(log.count == 7 * probes, "one log line per request")
        for line in log {
            #expect(line.complete)
            #expect(line.run_id == Self.runID)
            #expect(line.seq64.map { $0 >= 1000 && $0 < 1000 + UInt64(probes) } == true)
            #expect(line.seq16 == Int(line.seq64! - 1000))
        }
        // Lossy: exactly the requests the log calls dropped got no reply; the
        // seeded pattern at 50 % over 6 probes drops some and answers some.
        let lossy = log.filter { $0.destination == "198.18.0.12" }
        let answered = lossy.filter { $0.action == "reply" }.compactMap(\.seq64).sorted()
        #expect(answered == (repliedSequences["198.18.0.12"] ?? []).sorted())
        #expect(lossy.filter { $0.action == "drop" }.count + answered.count == probes)
        for line in log where line.behaviour == "garbage-first" {
            #expect(line.sent.map(\.kind) == ["garbage-zeroed", "garbage-truncated", "reply"])
            if let last = line.sent.last { #expect(last.time_ns - line.time_ns >= 20_000_000) }
        }
        for line in log where line.behaviour == "unreachable" {
            #expect(line.sent.map(\.kind) == ["unreachable"])
        }
    }

    @Test func flushesUnsentDelayedRepliesOnSIGTERM() throws {
        let namespace = try TestNamespace(pingSockets: true)
        defer { namespace.destroy() }
        let responder = try namespace.startResponder([
            .init(address: "198.18.0.14", behaviour: .late, delay_ms: 60_000, every: 1),
        ])
        let fd = try pingSocket(in: namespace, family: AF_INET)
        defer { close(fd) }
        let payload = pingemPayload(runID: Self.runID, targetIndex: 0, sequence: 7)
        try sendEcho(fd: fd, to: "198.18.0.14", sequence: 7, payload: payload)
        // Wait until the responder has read it: the delayed line is pending,
        // so it shows only in the flushed log; poll the log after stop instead.
        _ = collect(fd: fd, quiet: 200)
        let log = try responder.stop()
        try #require(log.count == 1)
        #expect(log[0].action == "delay")
        #expect(log[0].complete == false)
        #expect(log[0].sent.isEmpty)
        #expect(log[0].seq64 == 7)
    }
}
