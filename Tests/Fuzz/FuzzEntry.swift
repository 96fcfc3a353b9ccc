// libFuzzer entry for the packet parser and the probe payload codec; built
// by script/fuzz together with the parser's own source files (not a SwiftPM
// target: -sanitize=fuzzer needs a main-less executable and its own flags).
//
// Input: first byte picks the entry point, the rest is what the kernel would
// hand that entry point. A crash, an out-of-bounds read (ASan) or a broken
// invariant (fatalError below) is a finding. The invariant is the one that
// makes a forged packet unable to match a probe: a payload decodes only if
// it is byte for byte the canonical encoding of what it decodes to.

let v4Source = IPAddress(bytes: [192, 0, 2, 1])!
let v6Source = IPAddress(bytes: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1])!

func checkPayload(_ bytes: [UInt8]) {
    if let decoded = ProbePayload.decode(bytes, expectedSize: bytes.count),
       decoded.encode(size: bytes.count) != bytes {
        fatalError("decode accepted a non-canonical payload: \(bytes)")
    }
    if let decoded = ProbePayload.decodeQuoted(bytes),
       decoded.encode(size: bytes.count) != bytes {
        fatalError("decodeQuoted accepted a non-canonical payload: \(bytes)")
    }
}

func check(_ incoming: Incoming) {
    switch incoming {
    case let .echoReply(from, _, _, payload, _):
        precondition(from.bytes.count == 4 || from.bytes.count == 16)
        checkPayload(payload)
    case let .icmpError(family, _, _, reporter, destination, _, _, quoted, _):
        precondition(destination.family == family && reporter.family == family,
                     "an error whose addresses are not of its family")
        checkPayload(quoted)
    case .foreign:
        break
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let selector = input.first else { return 0 }
    let body = Array(input.dropFirst())
    switch selector % 8 {
    case 0: check(PacketParser.rawIPv4(body, kernelReceivedNs: 1))
    case 1: check(PacketParser.rawIPv6(body, from: v6Source, kernelReceivedNs: 1))
    case 2: check(PacketParser.datagram(body, from: v4Source, kernelReceivedNs: nil))
    case 3: check(PacketParser.datagram(body, from: v6Source, kernelReceivedNs: nil))
    case 4, 5:
        // body[0]: length of the sock_extended_err part (with its offender
        // sockaddr); the rest is the quoted echo request.
        guard let split = body.first else { return 0 }
        let rest = Array(body.dropFirst())
        let cut = min(Int(split), rest.count)
        let destination = selector % 8 == 4 ? v4Source : v6Source
        check(PacketParser.errorQueue(extendedError: Array(rest[..<cut]), quoted: Array(rest[cut...]),
                                      destination: destination, kernelReceivedNs: 1))
    case 6:
        if let a = PacketParser.address(fromSockaddr: body) { precondition(a.bytes.count == 4 || a.bytes.count == 16) }
        _ = PacketParser.controlMessages(body)
    default:
        checkPayload(body)
    }
    return 0
}
