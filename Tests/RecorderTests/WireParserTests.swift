import Testing
@testable import Recorder

@Suite struct WireParserTests {
    let payload = ProbePayload(runID: 7, targetIndex: 3, sequence: 70_000).encode(size: 56)
    let ns: Int64 = 1_764_000_000_123_456_789

    // MARK: Echo replies

    @Test func rawIPv4EchoReply() {
        let packet = Wire.ipv4(source: Wire.v4Target, destination: Wire.v4Local,
                               body: Wire.echo(type: 0, identifier: 0x1234, sequence: 4464, payload: payload))
        #expect(PacketParser.rawIPv4(packet, kernelReceivedNs: ns)
            == .echoReply(from: Wire.v4Target, identifier: 0x1234, sequence: 4464, payload: payload, kernelReceivedNs: ns))
    }

    @Test func rawIPv4WithOptionsAndTrailingBytes() {
        // IHL 6 (4 option bytes) and a link-layer pad after tot_len: the
        // ICMP message starts at IHL*4 and ends at tot_len.
        let body = Wire.echo(type: 0, identifier: 9, sequence: 1, payload: payload)
        var packet = Wire.ipv4(source: Wire.v4Target, destination: Wire.v4Local, body: [1, 1, 1, 0] + body)
        packet[0] = 0x46
        packet += [0xEE, 0xEE]
        #expect(PacketParser.rawIPv4(packet, kernelReceivedNs: nil)
            == .echoReply(from: Wire.v4Target, identifier: 9, sequence: 1, payload: payload, kernelReceivedNs: nil))
    }

    @Test func rawIPv4Rejects() {
        let good = Wire.ipv4(source: Wire.v4Target, destination: Wire.v4Local,
                             body: Wire.echo(type: 0, identifier: 1, sequence: 1, payload: payload))
        var badChecksum = good
        badChecksum[30] ^= 0xFF
        var badVersion = good
        badVersion[0] = 0x65
        var shortIHL = good
        shortIHL[0] = 0x44
        var longTotal = good
        longTotal[3] &+= 1
        let otherProtocol = Wire.ipv4(source: Wire.v4Target, destination: Wire.v4Local, body: Array(good[20...]), protocolNumber: 17)
        let request = Wire.ipv4(source: Wire.v4Target, destination: Wire.v4Local,
                                body: Wire.echo(type: 8, identifier: 1, sequence: 1, payload: payload))
        let redirect = Wire.ipv4(source: Wire.v4Target, destination: Wire.v4Local,
                                 body: Wire.icmp(type: 5, code: 1, body: Array(good[0..<28])))
        for packet in [badChecksum, badVersion, shortIHL, longTotal, otherProtocol, request, redirect,
                       Array(good[0..<27]), Array(good[0..<20]), [], [0x45]] {
            #expect(PacketParser.rawIPv4(packet, kernelReceivedNs: nil) == .foreign)
        }
    }

    @Test func rawIPv6EchoReply() {
        let message = Wire.echo(type: 129, identifier: 0xABCD, sequence: 2, payload: payload)
        #expect(PacketParser.rawIPv6(message, from: Wire.v6Target, kernelReceivedNs: ns)
            == .echoReply(from: Wire.v6Target, identifier: 0xABCD, sequence: 2, payload: payload, kernelReceivedNs: ns))
        #expect(PacketParser.rawIPv6(Array(message[0..<7]), from: Wire.v6Target, kernelReceivedNs: ns) == .foreign)
        #expect(PacketParser.rawIPv6(message, from: Wire.v4Target, kernelReceivedNs: ns) == .foreign)
        let request = Wire.echo(type: 128, identifier: 0xABCD, sequence: 2, payload: payload)
        #expect(PacketParser.rawIPv6(request, from: Wire.v6Target, kernelReceivedNs: ns) == .foreign)
    }

    @Test func datagramEchoReplies() {
        let v4 = Wire.echo(type: 0, identifier: 77, sequence: 5, payload: payload)
        #expect(PacketParser.datagram(v4, from: Wire.v4Target, kernelReceivedNs: ns)
            == .echoReply(from: Wire.v4Target, identifier: 77, sequence: 5, payload: payload, kernelReceivedNs: ns))
        let v6 = Wire.echo(type: 129, identifier: 77, sequence: 5, payload: payload)
        #expect(PacketParser.datagram(v6, from: Wire.v6Target, kernelReceivedNs: nil)
            == .echoReply(from: Wire.v6Target, identifier: 77, sequence: 5, payload: payload, kernelReceivedNs: nil))
        // A reply cut to the 8-byte header is delivered by the kernel as is:
        // parsed, with an empty payload that will never decode.
        #expect(PacketParser.datagram(Array(v4[0..<8]), from: Wire.v4Target, kernelReceivedNs: nil)
            == .echoReply(from: Wire.v4Target, identifier: 77, sequence: 5, payload: [], kernelReceivedNs: nil))
        #expect(PacketParser.datagram(v4, from: Wire.v6Target, kernelReceivedNs: nil) == .foreign)   // v4 type from a v6 socket
        #expect(PacketParser.datagram(Array(v4[0..<7]), from: Wire.v4Target, kernelReceivedNs: nil) == .foreign)
    }

    // MARK: ICMP errors on raw sockets

    /// The probe as it left us: IPv4 header + echo request.
    func sentV4(identifier: UInt16 = 0x1234, sequence: UInt16 = 4464) -> [UInt8] {
        Wire.ipv4(source: Wire.v4Local, destination: Wire.v4Target,
                  body: Wire.echo(type: 8, identifier: identifier, sequence: sequence, payload: payload))
    }

    @Test func rawIPv4ErrorQuotingOnlyEightBytes() {
        // RFC 792 minimum: IP header + 64 bits; the quoted tot_len still
        // says the full length, we keep what was actually quoted.
        let quote = Array(sentV4()[0..<28])
        let packet = Wire.ipv4(source: Wire.v4Router, destination: Wire.v4Local, body: Wire.icmp(type: 11, code: 0, body: quote))
        #expect(PacketParser.rawIPv4(packet, kernelReceivedNs: ns)
            == .icmpError(family: .v4, type: 11, code: 0, reporter: Wire.v4Router, destination: Wire.v4Target,
                          identifier: 0x1234, sequence: 4464, quotedPayload: [], kernelReceivedNs: ns))
    }

    @Test func rawIPv4ErrorQuotingEverything() {
        // RFC 1812 routers quote more; RFC 4884 may append extensions after
        // the quote (here 8 bytes of them): cut at the quoted tot_len.
        let quote = sentV4() + [0x20, 0, 0, 8, 0, 0, 0, 0]
        let packet = Wire.ipv4(source: Wire.v4Router, destination: Wire.v4Local,
                               body: Wire.icmp(type: 3, code: 1, body: quote))
        let parsed = PacketParser.rawIPv4(packet, kernelReceivedNs: nil)
        #expect(parsed == .icmpError(family: .v4, type: 3, code: 1, reporter: Wire.v4Router, destination: Wire.v4Target,
                                     identifier: 0x1234, sequence: 4464, quotedPayload: payload, kernelReceivedNs: nil))
        if case .icmpError(_, _, _, _, _, _, _, let quoted, _) = parsed {
            #expect(ProbePayload.decodeQuoted(quoted) == ProbePayload(runID: 7, targetIndex: 3, sequence: 70_000))
        }
    }

    @Test func rawIPv4ErrorRejects() {
        let sent = sentV4()
        func error(_ quote: [UInt8], type: UInt8 = 3) -> [UInt8] {
            Wire.ipv4(source: Wire.v4Router, destination: Wire.v4Local, body: Wire.icmp(type: type, code: 1, body: quote))
        }
        var quotedUDP = sent
        quotedUDP[9] = 17
        var quotedReply = sent
        quotedReply[20] = 0
        var lyingTotal = sent   // quoted tot_len shorter than its header + 8
        lyingTotal[2] = 0
        lyingTotal[3] = 27
        var quotedV6 = sent
        quotedV6[0] = 0x65
        for packet in [error(Array(sent[0..<27])), error(quotedUDP), error(quotedReply), error(lyingTotal),
                       error(quotedV6), error(sent, type: 5), error(sent, type: 13), error([])] {
            #expect(PacketParser.rawIPv4(packet, kernelReceivedNs: nil) == .foreign)
        }
        // Every ICMPv4 error type that quotes is accepted.
        for type: UInt8 in [3, 4, 11, 12] {
            guard case .icmpError(.v4, type, _, _, _, _, _, _, _) = PacketParser.rawIPv4(error(sent, type: type), kernelReceivedNs: nil) else {
                Issue.record("type \(type) not parsed as an error")
                continue
            }
        }
    }

    @Test func rawIPv6ErrorQuotingEverything() {
        let sent = Wire.ipv6(source: Wire.v6Local, destination: Wire.v6Target,
                             body: Wire.echo(type: 128, identifier: 0x4321, sequence: 9, payload: payload))
        for type: UInt8 in [1, 2, 3, 4] {
            let rest: [UInt8] = type == 2 ? [0, 0, 0x05, 0x00] : [0, 0, 0, 0]   // packet too big carries the MTU
            let message = Wire.icmp(type: type, code: 0, rest: rest, body: sent)
            #expect(PacketParser.rawIPv6(message, from: Wire.v6Router, kernelReceivedNs: ns)
                == .icmpError(family: .v6, type: type, code: 0, reporter: Wire.v6Router, destination: Wire.v6Target,
                              identifier: 0x4321, sequence: 9, quotedPayload: payload, kernelReceivedNs: ns))
        }
        // Quote cut mid-payload: keep what is there.
        let cut = Wire.icmp(type: 1, code: 3, body: Array(sent[0..<(40 + 8 + 30)]))
        #expect(PacketParser.rawIPv6(cut, from: Wire.v6Router, kernelReceivedNs: nil)
            == .icmpError(family: .v6, type: 1, code: 3, reporter: Wire.v6Router, destination: Wire.v6Target,
                          identifier: 0x4321, sequence: 9, quotedPayload: Array(payload[0..<30]), kernelReceivedNs: nil))
    }

    @Test func rawIPv6ErrorRejects() {
        let echo = Wire.echo(type: 128, identifier: 1, sequence: 1, payload: payload)
        let withHopByHop = Wire.ipv6(source: Wire.v6Local, destination: Wire.v6Target,
                                     body: [58, 0, 1, 4, 0, 0, 0, 0] + echo, nextHeader: 0)
        let lyingLength = Wire.ipv6(source: Wire.v6Local, destination: Wire.v6Target, body: echo, payloadLength: 7)
        let quotedReply = Wire.ipv6(source: Wire.v6Local, destination: Wire.v6Target,
                                    body: Wire.echo(type: 129, identifier: 1, sequence: 1, payload: payload))
        let good = Wire.ipv6(source: Wire.v6Local, destination: Wire.v6Target, body: echo)
        var quotedV4 = good
        quotedV4[0] = 0x45
        for (type, quote) in [(UInt8(1), withHopByHop), (1, lyingLength), (1, quotedReply), (1, quotedV4),
                              (1, Array(good[0..<47])), (135, good), (128, good)] {
            #expect(PacketParser.rawIPv6(Wire.icmp(type: type, code: 0, body: quote), from: Wire.v6Router,
                                         kernelReceivedNs: nil) == .foreign)
        }
    }

    // MARK: Datagram error queue

    @Test func errorQueueIPv4EightBytes() {
        let extended = Wire.extendedError(origin: 2, type: 3, code: 1, offender: Wire.v4Router)
        let quoted = Array(Wire.echo(type: 8, identifier: 40000, sequence: 17, payload: payload)[0..<8])
        #expect(PacketParser.errorQueue(extendedError: extended, quoted: quoted, destination: Wire.v4Target, kernelReceivedNs: ns)
            == .icmpError(family: .v4, type: 3, code: 1, reporter: Wire.v4Router, destination: Wire.v4Target,
                          identifier: 40000, sequence: 17, quotedPayload: [], kernelReceivedNs: ns))
    }

    @Test func errorQueueIPv6Full() {
        let extended = Wire.extendedError(origin: 3, type: 3, code: 0, offender: Wire.v6Router)
        let quoted = Wire.echo(type: 128, identifier: 40000, sequence: 17, payload: payload)
        #expect(PacketParser.errorQueue(extendedError: extended, quoted: quoted, destination: Wire.v6Target, kernelReceivedNs: nil)
            == .icmpError(family: .v6, type: 3, code: 0, reporter: Wire.v6Router, destination: Wire.v6Target,
                          identifier: 40000, sequence: 17, quotedPayload: payload, kernelReceivedNs: nil))
    }

    @Test func errorQueueRejects() {
        let quoted4 = Wire.echo(type: 8, identifier: 1, sequence: 1, payload: payload)
        let local = Wire.extendedError(origin: 1, type: 0, code: 0, errno: 90, offender: nil)          // EMSGSIZE
        let timestamping = Wire.extendedError(origin: 4, type: 0, code: 0, errno: 42, offender: nil)
        let noOffender = Wire.extendedError(origin: 2, type: 3, code: 1, offender: nil)
        let wrongFamily = Wire.extendedError(origin: 2, type: 3, code: 1, offender: Wire.v6Router)
        let redirect = Wire.extendedError(origin: 2, type: 5, code: 1, offender: Wire.v4Router)
        let good = Wire.extendedError(origin: 2, type: 11, code: 0, offender: Wire.v4Router)
        let cases: [([UInt8], [UInt8], IPAddress)] = [
            (local, quoted4, Wire.v4Target), (timestamping, quoted4, Wire.v4Target), (noOffender, quoted4, Wire.v4Target),
            (wrongFamily, quoted4, Wire.v4Target), (redirect, quoted4, Wire.v4Target),
            (good, quoted4, Wire.v6Target), (good, Array(quoted4[0..<7]), Wire.v4Target),
            (good, Wire.echo(type: 0, identifier: 1, sequence: 1, payload: payload), Wire.v4Target),
            (Array(good[0..<6]), quoted4, Wire.v4Target), (Array(good[0..<20]), quoted4, Wire.v4Target), ([], quoted4, Wire.v4Target),
        ]
        for (extended, quoted, destination) in cases {
            #expect(PacketParser.errorQueue(extendedError: extended, quoted: quoted, destination: destination,
                                            kernelReceivedNs: nil) == .foreign)
        }
    }

    // MARK: Kernel structures

    @Test func controlMessagesTimestampAndError() {
        let extended = Wire.extendedError(origin: 2, type: 3, code: 1, offender: Wire.v4Router)
        let control = Wire.timestamp(seconds: 1_764_000_000, nanoseconds: 123_456_789)
            + Wire.controlMessage(level: 0, type: 11, data: extended)
        #expect(PacketParser.controlMessages(control)
            == ControlMessages(kernelReceivedNs: 1_764_000_000_123_456_789, extendedError: extended))
        let v6 = Wire.controlMessage(level: 41, type: 25, data: extended)
        #expect(PacketParser.controlMessages(v6).extendedError == extended)
        let unknown = Wire.controlMessage(level: 41, type: 50, data: [1, 2, 3])
        #expect(PacketParser.controlMessages(unknown + control).kernelReceivedNs == 1_764_000_000_123_456_789)
    }

    @Test func controlMessagesLyingLengths() {
        var control = Wire.timestamp(seconds: 1, nanoseconds: 2)
        for length in [UInt.max, UInt(Int.max), 0, 15, UInt(control.count + 1)] {
            withUnsafeBytes(of: length) { control.replaceSubrange(0..<8, with: $0) }
            #expect(PacketParser.controlMessages(control) == ControlMessages())
        }
        #expect(PacketParser.controlMessages([]) == ControlMessages())
        #expect(PacketParser.controlMessages(Array(Wire.timestamp(seconds: 1, nanoseconds: 2)[0..<20])) == ControlMessages())
    }

    @Test func sockaddrs() {
        #expect(PacketParser.address(fromSockaddr: Wire.sockaddr(Wire.v4Target)) == Wire.v4Target)
        #expect(PacketParser.address(fromSockaddr: Wire.sockaddr(Wire.v6Target)) == Wire.v6Target)
        #expect(PacketParser.address(fromSockaddr: Wire.sockaddr(nil)) == nil)
        #expect(PacketParser.address(fromSockaddr: Array(Wire.sockaddr(Wire.v6Target)[0..<20])) == nil)
        #expect(PacketParser.address(fromSockaddr: [2]) == nil)
    }

    @Test func identifierFilter() {
        let reply = Incoming.echoReply(from: Wire.v4Target, identifier: 5, sequence: 1, payload: [], kernelReceivedNs: nil)
        #expect(ICMPSockets.keepingOnly(identifier: 5, family: .v4, reply) == reply)
        #expect(ICMPSockets.keepingOnly(identifier: 6, family: .v4, reply) == .foreign)
        #expect(ICMPSockets.keepingOnly(identifier: 5, family: .v6, reply) == .foreign)
        let error = Incoming.icmpError(family: .v6, type: 1, code: 0, reporter: Wire.v6Router, destination: Wire.v6Target,
                                       identifier: 5, sequence: 1, quotedPayload: [], kernelReceivedNs: nil)
        #expect(ICMPSockets.keepingOnly(identifier: 5, family: .v6, error) == error)
        #expect(ICMPSockets.keepingOnly(identifier: 4, family: .v6, error) == .foreign)
    }
}
