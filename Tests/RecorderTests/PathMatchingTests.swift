// Two targets at one address on two paths (interface, source or TOS): each
// path has its own ICMP identifier, and a reply or an ICMP error counts only
// for the target whose path carries it. An unbound raw socket sees every
// path's replies, so a copy with the other path's identifier is foreign.
@testable import Recorder
import Store
import Synchronization
import Testing

final class TwoPathTransport: ICMPTransport {
    struct Sent: Equatable { var destination: IPAddress; var path: Int; var sequence: UInt16; var payload: [UInt8] }
    let kind = SocketKind.raw
    let families: Set<IPFamily> = [.v4, .v6]
    let sent = Mutex<[Sent]>([])
    func identifier(for family: IPFamily, path: Int) -> UInt16 { 0x1000 + UInt16(path) * 2 + (family == .v6 ? 1 : 0) }
    func sendEcho(to destination: IPAddress, path: Int, sequence: UInt16, payload: [UInt8], hopLimit: Int?) -> Int32? {
        sent.withLock { $0.append(Sent(destination: destination, path: path, sequence: sequence, payload: payload)) }
        return nil
    }
    func receive(timeoutMilliseconds: Int32) -> [Incoming] { [] }
    func close() {}
}

@Suite struct PathMatchingTests {
    let clock = ManualClock()
    let transport = TwoPathTransport()
    let engine: ProbeEngine

    init() {
        let targets = [RecorderTarget(id: 1, name: "isp1", host: "192.0.2.1", path: 0),
                       RecorderTarget(id: 2, name: "isp2", host: "192.0.2.1", path: 1)]
        engine = ProbeEngine(config: EngineConfig(runID: 42, intervalNs: second, payloadSize: 56), sessionID: 1,
                             targets: targets, transport: transport, clock: clock, startMono: clock.monotonicNs())
        for i in 0..<2 { engine.setAddress(IPAddress(parsing: "192.0.2.1")!, forTarget: i) }
        clock.advance(600 * ms)
        engine.sendDue()  // probe 0 of both targets
    }

    @Test func eachProbeLeavesByItsTargetsPath() {
        #expect(transport.sent.withLock { $0.map(\.path) } == [0, 1])
    }

    @Test func aReplyWithTheOtherPathsIdentifierIsForeign() {
        let sent = transport.sent.withLock { $0 }
        func reply(_ s: TwoPathTransport.Sent, identifier: UInt16) -> Incoming {
            .echoReply(from: s.destination, identifier: identifier, sequence: s.sequence, payload: s.payload, kernelReceivedNs: nil)
        }
        // isp1's reply as the path-1 socket hears it, and the other way round.
        engine.handle([reply(sent[0], identifier: transport.identifier(for: .v4, path: 1)),
                       reply(sent[1], identifier: transport.identifier(for: .v4, path: 0))])
        var batch = engine.cutBatch()
        #expect(batch.foreignPackets == 2)
        #expect(batch.probes.allSatisfy { $0.rttNs == nil } && batch.replies.isEmpty)
        engine.handle([reply(sent[0], identifier: transport.identifier(for: .v4, path: 0)),
                       reply(sent[1], identifier: transport.identifier(for: .v4, path: 1))])
        batch = engine.cutBatch()
        #expect(batch.foreignPackets == 0 && batch.replies.map(\.targetID) == [1, 2])
    }

    @Test func anErrorQuotingOnlyTheHeaderGoesToThePathThatSentIt() {
        // RFC 792 quotes need not carry the payload: address and sequence are
        // the same for both targets, only the identifier tells them apart.
        let error = Incoming.icmpError(family: .v4, type: 3, code: 1, reporter: IPAddress(parsing: "198.51.100.1")!,
                                       destination: IPAddress(parsing: "192.0.2.1")!,
                                       identifier: transport.identifier(for: .v4, path: 1), sequence: 0,
                                       quotedPayload: [], kernelReceivedNs: nil)
        engine.handle([error])
        let batch = engine.cutBatch()
        #expect(batch.icmpErrors.map(\.targetID) == [2])
        engine.handle([Incoming.icmpError(family: .v4, type: 3, code: 1, reporter: IPAddress(parsing: "198.51.100.1")!,
                                          destination: IPAddress(parsing: "192.0.2.1")!, identifier: 0x7777, sequence: 0,
                                          quotedPayload: [], kernelReceivedNs: nil)])
        #expect(engine.cutBatch().foreignPackets == 1)
    }
}
