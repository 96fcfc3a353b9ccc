import Foundation
import Glibc

// pingem-responder --tun NAME --config FILE --log FILE [--path-log FILE]
//
// Test host for pingem's end-to-end tests. Attaches to an existing TUN
// device (the test creates it, its addresses and routes), answers ICMP echo
// per destination address as the config says (see Config.swift) and logs
// every request and what it sent back (see Log.swift). The log file appears
// only once the TUN is attached, so a test can wait for it as the "ready"
// signal. SIGTERM/SIGINT flush the log and exit 0. pingem's path probes
// meet the destination's routers (Routers.swift) and go to the path log.

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("pingem-responder: \(message)\n".utf8))
    exit(1)
}

func argument(_ name: String) -> String {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else {
        fail("usage: pingem-responder --tun NAME --config FILE --log FILE (missing \(name))")
    }
    return arguments[index + 1]
}

/// Opens /dev/net/tun and attaches to the named device as a layer-3 (IFF_TUN)
/// queue without the packet-information prefix (IFF_NO_PI).
func attachTUN(_ name: String) -> Int32 {
    let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
    if fd < 0 { fail("cannot open /dev/net/tun: \(String(cString: strerror(errno)))") }
    // struct ifreq is 40 bytes on Linux: ifr_name[IFNAMSIZ=16], then a union
    // whose first short is ifr_flags.
    var request = [UInt8](repeating: 0, count: 40)
    let nameBytes = Array(name.utf8)
    guard nameBytes.count < 16 else { fail("TUN name \(name) is longer than 15 bytes") }
    request.replaceSubrange(0..<nameBytes.count, with: nameBytes)
    let flags = UInt16(0x0001 /* IFF_TUN */ | 0x1000 /* IFF_NO_PI */)
    request[16] = UInt8(flags & 0xFF); request[17] = UInt8(flags >> 8)  // little-endian short
    let tunSetIff: UInt = 0x4004_54CA  // _IOW('T', 202, int)
    let result = request.withUnsafeMutableBytes { ioctl(fd, tunSetIff, $0.baseAddress!) }
    if result < 0 { fail("TUNSETIFF \(name): \(String(cString: strerror(errno)))") }
    return fd
}

func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

func sleepUntil(monotonic deadline: Int64) {
    var target = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, nil) == EINTR {}
}

/// SplitMix64 (Steele, Lea, Flood 2014): a fixed, well-mixed function of the
/// sequence, so which probes a lossy destination drops is reproducible.
func splitmix64(_ input: UInt64) -> UInt64 {
    var z = input &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// One packet to write, `delay` nanoseconds after the request was read.
struct PlannedPacket: Sendable {
    var delay: Int64
    var kind: String
    var bytes: [UInt8]
}

/// Per-destination state, touched only by the read loop.
struct DestinationState {
    var config: DestinationConfig
    var requests = 0
    var firstRequest: Int64?
}

let milli: Int64 = 1_000_000

/// Whether `now` lies in an outage destination's window, counted from its
/// first ordinary request (`first`).
func inOutage(_ config: DestinationConfig, first: Int64, now: Int64) -> Bool {
    guard config.behaviour == .outage else { return false }
    let elapsed = Double(now - first) / 1e9
    return elapsed >= (config.outage_start_s ?? 3) && elapsed < (config.outage_end_s ?? 6)
}

/// Decides what to do with one request: the log's action and the packets.
func plan(_ request: EchoRequest, pingem: PingemPayload?, state: inout DestinationState, now: Int64)
    -> (action: String, packets: [PlannedPacket])
{
    let config = state.config
    state.requests += 1
    let first = state.firstRequest ?? now
    state.firstRequest = first
    let reply = { PlannedPacket(delay: 0, kind: "reply", bytes: echoReply(to: request, payload: request.payload)) }
    switch config.behaviour {
    case .clean:
        return ("reply", [reply()])
    case .slow:
        var packet = reply()
        packet.delay = Int64(config.delay_ms ?? 250) * milli
        return ("delay", [packet])
    case .lossy:
        let sequence = pingem?.sequence ?? UInt64(request.sequence)
        let drop = splitmix64((config.seed ?? 0) ^ sequence) % 100 < UInt64(config.loss_percent ?? 30)
        return drop ? ("drop", []) : ("reply", [reply()])
    case .outage:
        return inOutage(config, first: first, now: now) ? ("drop", []) : ("reply", [reply()])
    case .late:
        guard state.requests % max(config.every ?? 4, 1) == 0 else { return ("reply", [reply()]) }
        var packet = reply()
        packet.delay = Int64(config.delay_ms ?? 3000) * milli
        return ("delay", [packet])
    case .duplicate:
        guard state.requests % max(config.every ?? 3, 1) == 0 else { return ("reply", [reply()]) }
        var second = reply()
        second.kind = "duplicate"
        second.delay = Int64(config.delay_ms ?? 5) * milli
        return ("duplicate", [reply(), second])
    case .unreachable:
        let router = config.router.flatMap(addressBytes)
            ?? addressBytes(request.family == 4 ? "198.18.0.254" : "fd00:18::fe")!
        return ("unreachable", [PlannedPacket(
            delay: 0, kind: "unreachable", bytes: destinationUnreachable(for: request, router: router))])
    case .garbageFirst:
        // (a) right id and sequence, zeroed data; (b) IPv4: the bare 8-byte
        // echo header (a ping socket delivers it as is), IPv6: data cut short.
        let zeroed = echoReply(to: request, payload: [UInt8](repeating: 0, count: request.payload.count))
        let cut = request.family == 4 ? 0 : min(config.cut_bytes ?? 12, request.payload.count)
        let truncated = echoReply(to: request, payload: Array(request.payload.prefix(cut)))
        var trueReply = reply()
        trueReply.delay = Int64(config.delay_ms ?? 20) * milli
        return ("garbage-first", [
            PlannedPacket(delay: 0, kind: "garbage-zeroed", bytes: zeroed),
            PlannedPacket(delay: 0, kind: "garbage-truncated", bytes: truncated),
            trueReply,
        ])
    case .silent:
        return ("drop", [])
    }
}

/// Writes one packet to the TUN; each write is one packet (IFF_NO_PI).
func send(_ packet: PlannedPacket, tun: Int32, log: ResponderLog, line: Int) {
    let written = packet.bytes.withUnsafeBytes { write(tun, $0.baseAddress, $0.count) }
    if written != packet.bytes.count {
        FileHandle.standardError.write(Data("pingem-responder: write \(packet.kind): \(String(cString: strerror(errno)))\n".utf8))
        return
    }
    log.sent(line, kind: packet.kind, at: realtimeNanoseconds())
}

// MARK: - Main

let tunName = argument("--tun")
let configPath = argument("--config")
let logPath = argument("--log")
let pathLogPath = CommandLine.arguments.contains("--path-log") ? argument("--path-log") : nil

let config: ResponderConfig
do {
    config = try JSONDecoder().decode(ResponderConfig.self, from: Data(contentsOf: URL(fileURLWithPath: configPath)))
} catch {
    fail("cannot read config \(configPath): \(error)")
}
var destinations: [String: DestinationState] = [:]
for entry in config.destinations {
    guard let bytes = addressBytes(entry.address) else { fail("bad address in config: \(entry.address)") }
    destinations[addressText(bytes)] = DestinationState(config: entry)
}

// Block the stop signals in every thread; one thread takes them with sigwait,
// so the log is flushed from ordinary code, not from a signal handler.
var stopSignals = sigset_t()
sigemptyset(&stopSignals)
sigaddset(&stopSignals, SIGTERM)
sigaddset(&stopSignals, SIGINT)
pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

let tun = attachTUN(tunName)
let log: ResponderLog
let pathLog: ResponderLog?
do {
    pathLog = try pathLogPath.map { try ResponderLog(path: $0) }
    log = try ResponderLog(path: logPath)
} catch { fail("\(error)") }
var pathStates: [String: PathState] = [:]

let signalSet = stopSignals
Thread.detachNewThread {
    var set = signalSet
    var received: Int32 = 0
    sigwait(&set, &received)
    pathLog?.close()
    log.close()
    exit(0)
}

var buffer = [UInt8](repeating: 0, count: 65536)
while true {
    let count = buffer.withUnsafeMutableBytes { read(tun, $0.baseAddress, $0.count) }
    if count < 0 {
        if errno == EINTR { continue }
        fail("read \(tunName): \(String(cString: strerror(errno)))")
    }
    let receivedAt = monotonicNanoseconds()
    let receivedRealtime = realtimeNanoseconds()
    guard let request = EchoRequest(packet: Array(buffer[0..<count])) else { continue }
    let destination = addressText(request.destination)
    if let fields = pathProbeFields(request.payload) {
        var state = pathStates[destination] ?? PathState()
        let ordinary = destinations[destination]
        let duringOutage = ordinary.map { inOutage($0.config, first: $0.firstRequest ?? receivedAt, now: receivedAt) } ?? false
        let (line, packets) = planPath(request, fields: fields, config: ordinary?.config.path,
                                       state: &state, now: receivedAt, time: receivedRealtime, duringOutage: duringOutage)
        pathStates[destination] = state
        for packet in packets {
            _ = packet.bytes.withUnsafeBytes { write(tun, $0.baseAddress, $0.count) }
        }
        pathLog?.writeLine(line)
        continue
    }
    let pingem = PingemPayload(request.payload)
    var state = destinations[destination]
        ?? DestinationState(config: DestinationConfig(address: destination, behaviour: .silent))
    let (action, packets) = plan(request, pingem: pingem, state: &state, now: receivedAt)
    destinations[destination] = state
    let line = log.begin(LogLine(
        time_ns: receivedRealtime, family: request.family,
        source: addressText(request.source), destination: destination,
        behaviour: state.config.behaviour.rawValue, action: action, tos: request.trafficClass,
        icmp_id: Int(request.identifier), seq16: Int(request.sequence),
        seq64: pingem?.sequence, run_id: pingem?.runID, target_index: pingem?.targetIndex,
        sent: [], complete: true))
    let immediate = packets.prefix { $0.delay == 0 }
    for packet in immediate { send(packet, tun: tun, log: log, line: line) }
    let delayed = Array(packets.dropFirst(immediate.count))
    if delayed.isEmpty {
        log.finish(line)
    } else {
        // A thread per delayed request: few at a time (100 ms probes, <= 3 s
        // delays), and sleeping to an absolute monotonic deadline keeps each
        // reply's delay exact however the threads are scheduled.
        Thread.detachNewThread {
            for packet in delayed {
                sleepUntil(monotonic: receivedAt + packet.delay)
                send(packet, tun: tun, log: log, line: line)
            }
            log.finish(line)
        }
    }
}
