// The stop, in the order the recorder runs it: the sender's thread ends,
// then the writer cuts the last batch; every probe sent is in it.
import Foundation
import Synchronization
import Testing
@testable import Recorder
import Store

/// Takes sends and answers nothing.
final class SilentTransport: ICMPTransport {
    let kind = SocketKind.raw
    let families: Set<IPFamily> = [.v4]
    let sends = Atomic(0)
    func identifier(for family: IPFamily, path: Int) -> UInt16 { 0x4242 }
    func sendEcho(to destination: IPAddress, path: Int, sequence: UInt16, payload: [UInt8], hopLimit: Int?) -> Int32? {
        sends.add(1, ordering: .relaxed)
        return nil
    }
    func receive(timeoutMilliseconds: Int32) -> [Incoming] { [] }
    func close() {}
}

@Suite struct ShutdownTests {
    @Test func everyProbeSentBeforeTheStopIsInTheLastBatch() throws {
        let clock = BlockingClock()
        let transport = SilentTransport()
        let interval: Int64 = 10_000_000
        let targets = (1...3).map { RecorderTarget(id: Int64($0), name: "t\($0)", host: "198.18.0.\($0)") }
        let engine = ProbeEngine(config: EngineConfig(runID: 9, intervalNs: interval, payloadSize: 56), sessionID: 1,
                                 targets: targets, transport: transport, clock: clock,
                                 startMono: clock.monotonicNs() + interval)
        for i in targets.indices { engine.setAddress(IPAddress(parsing: targets[i].host)!, forTarget: i) }
        let threads = RecorderThreads()
        let sender = Sender(engine: engine, clock: clock)
        threads.spawn("sender") { sender.run(threads) }
        let store = RecordingStore()
        var writer = Writer(store: store, source: engine, clock: clock, sessionID: 1, flushNs: 1_000_000_000,
                            maxHeldProbes: 1_000_000, databasePath: "test.db", log: { _ in })
        // Half a second of schedule, with one batch written on the way.
        for step in 1...50 {
            #expect(clock.waitForSleepers(1) != nil)
            clock.advance(interval / 3)
            if step == 25 { writer.drain(); let committed = writer.commit(); #expect(committed) }
        }
        // stop() waits for the sender, which notices at its next wake-up.
        let stopped = DispatchSemaphore(value: 0)
        Thread { threads.stop(); stopped.signal() }.start()
        while stopped.wait(timeout: .now() + .milliseconds(20)) == .timedOut {
            if clock.waitForSleepers(1, within: 0.05) != nil { clock.advance(interval) }
        }
        try writer.finish()
        let sent = transport.sends.load(ordering: .relaxed)
        #expect(sent >= 3 * 15)
        #expect(store.written.withLock { $0.count } == 2)
        #expect(store.probes.count == sent)
        #expect(Set(store.probes).count == sent)
    }
}
