import Foundation
import Glibc
import Synchronization

// The responder's log: one JSON object per line, one line per echo request
// received, written once every packet planned for it has been sent (so a
// late reply's line appears up to its delay after the request). Fields:
//   time_ns        CLOCK_REALTIME when the request was read from the TUN
//   family         4 or 6
//   source, destination   addresses of the request
//   behaviour      the destination's configured behaviour
//   action         reply | delay | drop | duplicate | unreachable | garbage-first
//   tos            the request's TOS byte (IPv4) or traffic class (IPv6)
//   icmp_id, seq16 the ICMP identifier and 16-bit sequence
//   seq64, run_id, target_index   from the pingem payload, absent if not pingem's
//   sent           [{"kind", "time_ns"}] each packet sent back, in send order;
//                  kind is reply | duplicate | unreachable | garbage-zeroed | garbage-truncated
//   complete       false only for lines flushed at SIGTERM/SIGINT while
//                  packets were still waiting to be sent

struct SentPacket: Codable, Sendable {
    var kind: String
    var time_ns: Int64
}

/// The one definition of a line: EndToEndTests decode the log with it.
struct LogLine: Codable, Sendable {
    var time_ns: Int64
    var family: Int
    var source, destination, behaviour, action: String
    var tos: Int
    var icmp_id, seq16: Int
    var seq64, run_id: UInt64?
    var target_index: UInt32?
    var sent: [SentPacket]
    var complete: Bool
}

func realtimeNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// Collects lines from the read loop and the delayed-send threads; the one
/// place that writes the file.
final class ResponderLog: Sendable {
    private struct State {
        var pending: [Int: LogLine] = [:]
        var nextID = 0
        var closed = false
    }
    private let state = Mutex(State())
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o644)
        if fd < 0 { throw ResponderError("cannot open log \(path): \(String(cString: strerror(errno)))") }
    }

    /// Starts a line; returns its handle for `sent` and `finish`.
    func begin(_ line: LogLine) -> Int {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.pending[id] = line
            return id
        }
    }

    func sent(_ id: Int, kind: String, at time: Int64) {
        state.withLock { $0.pending[id]?.sent.append(SentPacket(kind: kind, time_ns: time)) }
    }

    func finish(_ id: Int) {
        state.withLock { state in
            guard !state.closed, let line = state.pending.removeValue(forKey: id) else { return }
            write(line)
        }
    }

    /// Writes every unfinished line marked incomplete; nothing is written after.
    func close() {
        state.withLock { state in
            for id in state.pending.keys.sorted() {
                var line = state.pending[id]!
                line.complete = false
                write(line)
            }
            state.pending = [:]
            state.closed = true
            fsync(fd)
        }
    }

    /// Writes a line of another shape (the path log's) at once.
    func writeLine<Line: Encodable>(_ line: Line) {
        state.withLock { state in
            guard !state.closed else { return }
            write(line)
        }
    }

    private func write<Line: Encodable>(_ line: Line) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(line) else { return }
        data.append(0x0A)
        // O_APPEND and one write per line: lines never interleave.
        data.withUnsafeBytes { raw in _ = Glibc.write(fd, raw.baseAddress, raw.count) }
    }
}

struct ResponderError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
