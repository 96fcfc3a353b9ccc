// A clock for code that runs on threads of its own: `sleep` blocks the
// calling thread until the test advances the clock to the deadline (the
// idea of swift-async-algorithms' ManualClock, for blocking sleeps). A test
// advances time and then waits until every thread it drives is asleep
// again, so it sees exactly what they did in between, without real time.
import Foundation
@testable import Recorder

// @unchecked Sendable: every stored property is read and written only
// while `condition` is locked.
final class BlockingClock: RecorderClock, @unchecked Sendable {
    private let condition = NSCondition()
    private var mono: Int64 = 1_000_000_000_000
    private var wall: Int64 = 1_764_000_000_000_000_000
    /// The deadlines threads sleep until; one entry per sleeping thread.
    private var deadlines: [Int64] = []

    func monotonicNs() -> Int64 { locked { mono } }
    func wallNs() -> Int64 { locked { wall } }

    func sleep(untilMonotonicNs deadline: Int64) {
        condition.lock()
        defer { condition.unlock() }
        guard deadline > mono else { return }
        deadlines.append(deadline)
        condition.broadcast()
        while mono < deadline { condition.wait() }
        deadlines.remove(at: deadlines.firstIndex(of: deadline)!)
        condition.broadcast()
    }

    /// Moves both clocks forward and wakes the sleepers that are due.
    func advance(_ ns: Int64) {
        locked { mono += ns; wall += ns }
        condition.broadcast()
    }

    /// Moves the wall clock alone (an NTP step), forward or back.
    func stepWall(_ ns: Int64) { locked { wall += ns } }

    /// Waits (at most `seconds` of real time) until `count` threads sleep
    /// until a deadline still ahead; returns those deadlines, earliest
    /// first, or nil on time-out.
    func waitForSleepers(_ count: Int, within seconds: Double = 10) -> [Int64]? {
        condition.lock()
        defer { condition.unlock() }
        let giveUp = Date().addingTimeInterval(seconds)
        while true {
            let ahead = deadlines.filter { $0 > mono }.sorted()
            if ahead.count >= count { return ahead }
            if !condition.wait(until: giveUp) { return nil }
        }
    }

    private func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }
}
