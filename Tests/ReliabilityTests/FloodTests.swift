// A flood of foreign ICMP (echo replies for other ids and runs, a forged one
// with the recorder's own run id, truncated replies, errors quoting nothing of
// ours) at 20,000 packets a second into the recorder's namespace: every true
// reply is still matched, the foreign packets are counted (exactly: all that
// reached its socket) and not stored, and its memory stays flat.
import Foundation
import Recorder
import Reports
import Synchronization
import Testing
import TestSupport

private func checksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var i = 0
    while i + 1 < bytes.count { sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]); i += 2 }
    if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
    while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

private func icmp(type: UInt8, code: UInt8, rest: [UInt8], body: [UInt8]) -> [UInt8] {
    var packet = [type, code, 0, 0] + rest + body
    let c = checksum(packet)
    packet[2] = UInt8(c >> 8); packet[3] = UInt8(c & 0xFF)
    return packet
}

/// Foreign packet number `i`: five kinds in turn.
private func foreignPacket(_ i: Int, runID: UInt64, random: inout SplitMix64) -> [UInt8] {
    let id = UInt16.random(in: 0...UInt16.max, using: &random), seq = UInt16(truncatingIfNeeded: i)
    let idSeq = [UInt8(id >> 8), UInt8(id & 0xFF), UInt8(seq >> 8), UInt8(seq & 0xFF)]
    switch i % 5 {
    case 0:  // echo reply, random payload
        return icmp(type: 0, code: 0, rest: idSeq, body: (0..<56).map { _ in UInt8.random(in: 0...255, using: &random) })
    case 1:  // a well-formed probe payload of another run
        return icmp(type: 0, code: 0, rest: idSeq,
                    body: ProbePayload(runID: random.next(), targetIndex: 0, sequence: UInt64(seq)).encode(size: 56))
    case 2:  // our run id, a sequence never sent
        return icmp(type: 0, code: 0, rest: idSeq,
                    body: ProbePayload(runID: runID, targetIndex: 0, sequence: 1 << 40 + UInt64(i)).encode(size: 56))
    case 3:  // truncated to the header
        return icmp(type: 0, code: 0, rest: idSeq, body: [])
    default:  // destination unreachable quoting an IPv4 header and an echo of nobody
        let quotedIP: [UInt8] = [0x45, 0, 0, 84, 0, 0, 0x40, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]
        return icmp(type: 3, code: 1, rest: [0, 0, 0, 0], body: quotedIP + [8, 0, 0, 0] + idSeq)
    }
}

/// setns(2): Glibc's module map hides it (_GNU_SOURCE), so look it up.
private func enterNetworkNamespace(_ fd: Int32) -> Bool {
    typealias SetNS = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(nil, "setns") else { return false }
    let CLONE_NEWNET: Int32 = 0x4000_0000
    return unsafeBitCast(symbol, to: SetNS.self)(fd, CLONE_NEWNET) == 0
}

private func residentKB(_ pid: Int32) -> Int {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
}

/// Packets dropped by the raw sockets of a namespace (full receive buffers).
private func rawSocketDrops(_ namespace: String) throws -> Int64 {
    let r = try run("/usr/sbin/ip", ["netns", "exec", namespace, "cat", "/proc/net/raw", "/proc/net/raw6"])
    return r.stdout.split(separator: "\n").dropFirst().compactMap { Int64($0.split(separator: " ").last ?? "") }.reduce(0, +)
}

extension Reliability {
    @Suite(needsRoot) struct Flood {
        let dir = TemporaryFolder()

        @Test func aForeignFloodIsCountedNotStoredAndTrueRepliesStillMatch() throws {
            let net = try NamespacePair(loopbackOnly: ())
            let db = dir.file("flood.db")
            let recorder = try Recorder(["127.0.0.1", "--interval", "20ms", "--flush", "200ms", "--verbose", "--db", db],
                                        logPath: dir.file("flood.log"), namespace: net.a)
            #expect(waitUntil { (try? sqlInt(db, "SELECT count(*) FROM probe")) ?? 0 > 0 })
            let runID = UInt64(bitPattern: try #require(try sessions(db).first).runID)

            // The flooder: a thread moved into the namespace (setns is per
            // thread), sending from a raw socket that itself receives nothing.
            let total = 40_000, perSecond = 20_000
            let sent = Atomic<Int>(0)
            let rss = Mutex<[Int]>([])
            let done = DispatchSemaphore(value: 0)
            let namespace = net.a, pid = recorder.pid
            Thread {
                defer { done.signal() }
                let nsfd = open("/var/run/netns/\(namespace)", O_RDONLY)
                guard nsfd >= 0, enterNetworkNamespace(nsfd) else { return }
                close(nsfd)
                let fd = socket(AF_INET, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_ICMP))
                guard fd >= 0 else { return }
                defer { close(fd) }
                var blockAll: UInt32 = .max  // ICMP_FILTER: a set bit blocks that type
                _ = setsockopt(fd, SOL_RAW, 1, &blockAll, socklen_t(4))
                var to = sockaddr_in()
                to.sin_family = sa_family_t(AF_INET)
                to.sin_addr.s_addr = inet_addr("127.0.0.1")
                var random = SplitMix64(seed: 99)
                let start = wallNow()
                for i in 0..<total {
                    let packet = foreignPacket(i, runID: runID, random: &random)
                    let n = withUnsafePointer(to: &to) { p in
                        p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(fd, packet, packet.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                        }
                    }
                    if n == packet.count { sent.add(1, ordering: .relaxed) }
                    if i % 200 == 199 {
                        // Pace to perSecond; sample the recorder's memory twice.
                        let due = start + Int64(i + 1) * second / Int64(perSecond)
                        let now = wallNow()
                        if due > now { usleep(UInt32((due - now) / 1000)) }
                        if i + 1 == total / 4 || i + 1 == total { rss.withLock { $0.append(residentKB(pid)) } }
                    }
                }
            }.start()
            done.wait()
            // The receiver may still be working through the flood queued in
            // its socket (a shared VM gives it less than a core): wait until
            // its batches count every packet, or 15 s, then half a second
            // for the last true replies. What is left unread at the stop
            // would be neither counted nor a kernel drop.
            _ = waitUntil(limit: 15) {
                let counted = (try? sessions(db).first?.foreignPackets) ?? nil
                return (counted ?? 0) + ((try? rawSocketDrops(net.a)) ?? 0) >= Int64(total)
            }
            pause(500 * ms)
            // Read while the sockets are open: closing them takes their
            // lines, and their drop counts, out of /proc/net/raw.
            let drops = try rawSocketDrops(net.a)
            #expect(recorder.stop(SIGTERM) == 0, "\(recorder.log)")
            #expect(sent.load(ordering: .relaxed) == total)

            let session = try #require(try sessions(db).first)
            // Every foreign packet that reached the recorder's socket is
            // counted; none is stored as a reply or an error. The receiver
            // keeps up: the kernel drops nothing for a full buffer.
            #expect(session.foreignPackets + drops == Int64(total), "\(session.foreignPackets) counted, \(drops) dropped by the kernel")
            #expect(drops == 0, "the receiver fell behind: the kernel dropped \(drops) packets for a full socket buffer")
            // Reply rows exist only for true replies read after their probe's
            // batch was cut (the flood keeps the receiver busy): one per probe
            // without an rtt in its row, each joined to a probe of ours.
            let late = try sqlInt(db, "SELECT count(*) FROM probe WHERE rtt_ns IS NULL")
            #expect(try sqlInt(db, "SELECT count(*) FROM reply") == late)
            #expect(try sqlInt(db, "SELECT count(*) FROM reply JOIN probe USING (sent_ns, target_id) WHERE probe.rtt_ns IS NULL") == late)
            #expect(try sqlInt(db, "SELECT count(*) FROM icmp_error") == 0)
            // Every true reply matched: exact counts against the log.
            let sentLines = recorder.logLines(containing: ": probe ").filter { $0.hasSuffix(" sent") }.count
            let replyLines = recorder.logLines(containing: ": reply to probe ").count
            let s = try #require(try report(db, since: session.startedNs, until: session.stoppedNs!).targets.first?.summary)
            #expect(s.sent == sentLines && s.received == replyLines && s.received == s.sent && s.sent >= 100)
            #expect(s.lost == 0 && s.duplicates == 0)
            // Memory flat: from a quarter of the flood to its end.
            let samples = rss.withLock { $0 }
            #expect(samples.count == 2)
            if samples.count == 2 { #expect(samples[1] - samples[0] < 4096, "RSS grew from \(samples[0]) kB to \(samples[1]) kB") }
        }
    }
}
