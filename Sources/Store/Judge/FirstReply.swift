// A probe's first reply: schema.sql defines it as the smallest rtt among the
// probe row's own rtt_ns and its reply rows, wherever the recorder wrote it
// (a reply may reach the database before or after its probe's row, and
// compaction moves them). The rest are duplicates.

/// A probe's reply rows folded: the smallest rtt, and how many.
public struct ReplyRows: Sendable, Hashable {
    public var firstNs: Nanoseconds
    public var count: Int

    @inlinable public init(_ rttNs: Nanoseconds) { firstNs = rttNs; count = 1 }

    @inlinable
    public mutating func add(_ rttNs: Nanoseconds) {
        firstNs = min(firstNs, rttNs)
        count += 1
    }
}

/// The first reply of a probe whose row holds `rowNs` and whose reply rows
/// hold `replyRows`, and every other reply (in no particular order).
public func splitFirstReply(rowNs: Nanoseconds?, replyRows: [Nanoseconds]) -> (first: Nanoseconds?, others: [Nanoseconds]) {
    guard let smallest = replyRows.min(), rowNs.map({ smallest < $0 }) ?? true else { return (rowNs, replyRows) }
    var others = replyRows
    others.remove(at: others.firstIndex(of: smallest)!)
    if let row = rowNs { others.append(row) }
    return (smallest, others)
}
