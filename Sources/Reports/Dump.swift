// `pingem dump`: the plain rows of any window as CSV, whether the probes sit
// in probe rows or in compacted blocks. The rows are the history's meaning,
// not its storage: a probe's rtt_ns is its first reply (the smallest rtt of
// its row and its reply rows, as schema.sql defines it), and the reply table
// lists every other reply. So a dump is the same byte for byte before and
// after compaction, and after the recorder wrote a reply late or early.
import Store

public enum DumpTable: String, CaseIterable, Sendable {
    /// sent_ns,target,rtt_ns,send_error: every probe with its first reply.
    case probe
    /// sent_ns,target,rtt_ns: every reply that is not a probe's first
    /// (duplicates, and replies to probes the database does not hold).
    case reply
    /// sent_ns,target,rtt_ns,family,type,code,source: every ICMP error.
    case icmpError = "icmp_error"

    public var header: String {
        switch self {
        case .probe: return "sent_ns,target,rtt_ns,send_error"
        case .reply: return "sent_ns,target,rtt_ns"
        case .icmpError: return "sent_ns,target,rtt_ns,family,type,code,source"
        }
    }
}

/// Writes the CSV of `table` for probes sent in [since, until) of the named
/// targets (all when empty), header first, in (sent_ns, target id, rtt_ns)
/// order, a chunk at a time through `write`. Unknown targets throw
/// ReportError.
public func dumpCSV(_ db: Database, table: DumpTable, since: Nanoseconds, until: Nanoseconds,
                    targets wanted: [String], write: (String) -> Void) throws {
    let all = try db.targets()
    let selected = try selectTargets(all, wanted)
    let ids: Set<Int64>? = wanted.isEmpty ? nil : Set(selected.map(\.id))
    let names = Dictionary(all.map { ($0.id, csvField($0.name)) }, uniquingKeysWith: { a, _ in a })
    var out = table.header + "\n"
    func flushIfBig() {
        if out.utf8.count >= 1 << 16 { write(out); out = "" }
    }
    if table == .icmpError {
        for e in try db.icmpErrors(from: since, to: until, targets: ids) {
            out += "\(e.sentNs),\(names[e.targetID] ?? String(e.targetID)),\(e.rttNs),\(e.family),\(e.type),\(e.code),\(csvField(e.source))\n"
            flushIfBig()
        }
        write(out)
        return
    }
    // The reply rows of the window, by probe, smallest first.
    struct Key: Hashable { var sent: Int64; var target: Int64 }
    var replies: [Key: [Int64]] = [:]
    for reply in try db.replies(from: since, to: until, targets: ids) {
        replies[Key(sent: reply.sentNs, target: reply.targetID), default: []].append(reply.rttNs)
    }
    try db.forEachProbe(from: since, to: until, targets: ids) { probe in
        var first = probe.rttNs
        let key = Key(sent: probe.sentNs, target: probe.targetID)
        if !replies.isEmpty, let rtts = replies[key] {
            // The row's own rtt, if not the first reply, is one of the others.
            let split = splitFirstReply(rowNs: probe.rttNs, replyRows: rtts)
            first = split.first
            replies[key] = split.others
        }
        if table == .probe {
            out += "\(probe.sentNs),\(names[probe.targetID] ?? String(probe.targetID)),"
                + "\(first.map(String.init) ?? ""),\(probe.sendError.map(String.init) ?? "")\n"
            flushIfBig()
        }
    }
    if table == .reply {
        var rows: [(Int64, Int64, Int64)] = []
        for (key, rtts) in replies { for rtt in rtts { rows.append((key.sent, key.target, rtt)) } }
        rows.sort { $0 < $1 }
        for row in rows {
            out += "\(row.0),\(names[row.1] ?? String(row.1)),\(row.2)\n"
            flushIfBig()
        }
    }
    write(out)
}
