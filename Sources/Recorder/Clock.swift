import Glibc

/// The recorder's two clocks, injected so tests can drive time by hand.
///
/// - `monotonicNs` is CLOCK_BOOTTIME: it never steps and keeps counting
///   while the machine is suspended, so the schedule notices missed slots
///   after a suspend and round-trip times never go negative.
/// - `wallNs` is CLOCK_REALTIME: what probes are stamped with, because a
///   user asks "what happened at 21:04", in wall-clock terms.
///
/// How they combine: a probe's `sent_ns` is the wall clock read at the send
/// call; its RTT is the difference of monotonic readings. The kernel stamps
/// a received packet with CLOCK_REALTIME only (SO_TIMESTAMPNS), so right
/// after reading a packet we read both clocks once and move the kernel's
/// stamp onto the monotonic axis by the (tiny) delay between the two wall
/// readings: rx_mono = now_mono - (now_wall - kernel_wall). That is exact
/// however long the packet waited in the socket: NTP slewing changes the
/// rate of CLOCK_REALTIME and CLOCK_BOOTTIME alike (only MONOTONIC_RAW is
/// spared), so the two differ only by steps, which is why the receiver may
/// let replies gather before reading them. A wall-clock step that lands
/// between the kernel's stamp and our read would make that delay absurd;
/// then (outside 0...now - send) we fall back to now_mono.
public protocol RecorderClock: Sendable {
    func monotonicNs() -> Int64
    func wallNs() -> Int64
    /// Sleeps until the monotonic clock reads `deadline` (or returns at once
    /// if it has passed). May return early on a signal; callers loop.
    func sleep(untilMonotonicNs deadline: Int64)
}

public struct SystemClock: RecorderClock {
    public init() {}

    public func monotonicNs() -> Int64 { Self.read(CLOCK_BOOTTIME) }
    public func wallNs() -> Int64 { Self.read(CLOCK_REALTIME) }

    public func sleep(untilMonotonicNs deadline: Int64) {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        // clock_nanosleep returns the error number directly (not via errno);
        // EINTR just means "loop again", which the callers do.
        _ = clock_nanosleep(CLOCK_BOOTTIME, TIMER_ABSTIME, &ts, nil)
    }

    private static func read(_ clock: clockid_t) -> Int64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
