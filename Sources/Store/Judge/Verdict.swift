// The verdict on one probe: what answered it and what that means at a
// timeout. Every view of the history (the hour summarizer, the report,
// /metrics, dump, watch, export) judges a probe here and nowhere else.
//
// The rule, in order:
//   * the first reply (the smallest rtt of the probe's row and its reply
//     rows) within the timeout: received, even if an ICMP error came too;
//   * a first reply after the timeout: late, which is lost;
//   * no reply but a send error or an ICMP error: lost, with that failure;
//   * no reply, no error, and the probe's session ended before its timeout
//     ran out (or it has no session): unknown, never loss, because the
//     recorder was not there to see a reply;
//   * otherwise lost.

/// Why a probe failed: a send error (errno, or -1 unresolved) or an ICMP error.
public enum FailureKind: Hashable, Sendable {
    case send(Int32)
    case icmp(family: Int, type: UInt8, code: UInt8)

    /// One integer, for the compact encoding: send errors as themselves
    /// (errno > 0, or -1), ICMP errors above 2^32.
    var code: Int64 {
        switch self {
        case .send(let errno): return Int64(errno)
        case .icmp(let family, let type, let code):
            return (1 << 32) | Int64(family) << 16 | Int64(type) << 8 | Int64(code)
        }
    }

    init(code: Int64) {
        if code >= 1 << 32 {
            self = .icmp(family: Int((code >> 16) & 0xFFFF), type: UInt8((code >> 8) & 0xFF), code: UInt8(code & 0xFF))
        } else {
            self = .send(Int32(truncatingIfNeeded: code))
        }
    }
}

/// What became of a probe at a given timeout.
public enum Verdict: UInt8, Sendable {
    /// Its first reply came within the timeout.
    case received
    /// Its first reply came after the timeout: counted as lost (and late).
    case late
    /// No reply in time: none at all, or a send or ICMP error.
    case lost
    /// No reply and no error, and its recorder stopped before the timeout
    /// ran out: neither received nor lost.
    case unknown

    /// Late probes are lost probes.
    @inlinable public var isLost: Bool { self == .lost || self == .late }
}

/// Everything that answered one probe.
public struct ProbeAnswers: Sendable {
    /// The first reply's rtt (the smallest of the row and the reply rows).
    public var firstReplyNs: Nanoseconds?
    /// Echo replies in all, the first included.
    public var replies: Int
    /// A send error wins over an ICMP error (nothing was sent to be answered).
    public var failure: FailureKind?

    /// `replyRows`: the probe's reply rows folded (ReplyRows); `icmpError`:
    /// its first ICMP error (ICMPErrorRecord.answersBefore), if any.
    @inlinable @inline(__always)
    public init(_ probe: ProbeRecord, replyRows: ReplyRows?, icmpError: ICMPErrorRecord?) {
        firstReplyNs = probe.rttNs
        replies = probe.rttNs == nil ? 0 : 1
        if let rows = replyRows {
            firstReplyNs = min(firstReplyNs ?? rows.firstNs, rows.firstNs)
            replies += rows.count
        }
        if let sendError = probe.sendError {
            failure = .send(sendError)
        } else if let icmp = icmpError {
            failure = .icmp(family: icmp.family, type: icmp.type, code: icmp.code)
        } else {
            failure = nil
        }
    }

    /// Answers known as they are (a path probe's: its one answer, judged
    /// as a reply or as an ICMP error by PathRounds).
    @inlinable
    public init(firstReplyNs: Nanoseconds?, replies: Int, failure: FailureKind?) {
        self.firstReplyNs = firstReplyNs; self.replies = replies; self.failure = failure
    }

    /// Echo replies beyond the first.
    @inlinable public var duplicates: Int { max(0, replies - 1) }

    /// The verdict at `timeoutNs` of the probe sent at `sentNs`, whose
    /// session's data ends at `sessionEndNs` (nil: it has no session; only
    /// read for a probe without reply or error, so it is not computed for
    /// every probe of a report).
    @inlinable @inline(__always)
    public func verdict(sentNs: Nanoseconds, sessionEndNs: @autoclosure () -> Nanoseconds?, timeoutNs: Nanoseconds) -> Verdict {
        if let first = firstReplyNs { return first <= timeoutNs ? .received : .late }
        if failure != nil { return .lost }
        guard let end = sessionEndNs(), sentNs + timeoutNs <= end else { return .unknown }
        return .lost
    }
}

extension ICMPErrorRecord {
    /// Whether this error is the probe's first rather than `other`: the
    /// smaller rtt; on a tie the one met first stays.
    @inlinable
    public func answersBefore(_ other: ICMPErrorRecord) -> Bool { rttNs < other.rttNs }
}
