// The table a person reads at a glance: one row per target, then with epochs
// a block per target. Times are local (zone named once in the header line).
// Escape codes are added after padding so colour never shifts the columns.
import Foundation
import Store

private let statColumns = ["SENT", "LOSS%", "LOST", "LATE", "DUP", "ERR", "UNK", "COVER",
                           "MIN ms", "P50 ms", "P90 ms", "P99 ms", "MAX ms", "JITTER ms"]

private enum Style {
    static let red = "\u{1B}[31m", dim = "\u{1B}[2m", bold = "\u{1B}[1m", reset = "\u{1B}[0m"
}

/// `path`: each target's block ends with its path table and where its loss begins.
func renderTable(_ report: Report, color: Bool, timeZone: TimeZone, path: Bool = false) -> String {
    var clock = LocalClock(timeZone: timeZone, since: report.since, until: report.until)
    // Sub-minute epochs (or a window starting mid-minute) need seconds to tell rows apart.
    let minute: Nanoseconds = 60_000_000_000
    clock.epochSeconds = report.epochNs.map { $0 % minute != 0 || report.since % minute != 0 } ?? false
    var lines: [String] = []
    var header = "Window \(clock.full(report.since)) → \(clock.full(report.until)) \(clock.zoneLabel)"
        + ", timeout \(durationLabel(report.timeoutNs))"
    if let epoch = report.epochNs { header += ", epochs of \(durationLabel(epoch))" }
    lines.append(header)
    lines.append("")

    // Several databases side by side: a VANTAGE column first.
    let vantages = report.targets.contains { $0.vantage != nil }
    let labelColumns = vantages ? ["VANTAGE", "TARGET", "ADDRESS"] : ["TARGET", "ADDRESS"]
    var rows = [TableRow(cells: labelColumns + statColumns, isHeader: true)]
    for target in report.targets {
        var address = target.addresses.last ?? "-"
        if target.addresses.count > 1 { address += " (+\(target.addresses.count - 1))" }
        if let probed = probedAsLabel(target) { address += " (\(probed))" }
        let labels = [target.target, address]
        rows.append(statRow(vantages ? [target.vantage ?? "-"] + labels : labels, target.summary))
    }
    lines += layout(rows, leftColumns: labelColumns.count, color: color)

    for target in report.targets {
        var block: [String] = []
        if report.epochNs != nil {
            var epochRows = [TableRow(cells: ["TIME"] + statColumns, isHeader: true)]
            for epoch in target.epochs { epochRows.append(statRow([clock.short(epoch.start)], epoch.summary)) }
            block += layout(epochRows, leftColumns: 1, color: color)
        }
        for outage in target.outages {
            block.append("outage \(clock.precise(outage.start)) → \(clock.precise(outage.end)), "
                         + "\(outage.lost) probes, \(fixed(outage.seconds, 1)) s, \(whereLabel(outage.lossWhere))")
        }
        let kinds = target.summary.errorKinds.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        if !kinds.isEmpty {
            block.append("errors: " + kinds.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if path { block += pathBlock(target, color: color) }
        if block.isEmpty { continue }
        lines.append("")
        // "name (host) addresses", each part only when it adds something.
        var title = target.target
        if let vantage = target.vantage { title += " at \(vantage)" }
        if target.host != target.target { title += " (\(target.host))" }
        let shown = target.addresses.filter { $0 != target.host && $0 != target.target }
        if !shown.isEmpty { title += " " + shown.joined(separator: ", ") }
        lines.append(color ? Style.bold + title + Style.reset : title)
        lines += block.map { "  " + $0 }
    }
    if report.percentilesApproximate {
        lines.append("")
        lines.append("Percentiles of whole hours come from hourly summaries (within 1 %); --exact reads every probe.")
    }
    return lines.joined(separator: "\n") + "\n"
}

private let pathColumns = ["HOP", "ADDRESS", "SENT", "LOSS%", "FWD LOSS%", "P50 ms", "P90 ms", "MAX ms"]

/// The mtr-style table of the window's path (the last row is the target),
/// then where its loss begins in words.
private func pathBlock(_ target: TargetReport, color: Bool) -> [String] {
    guard !target.path.isEmpty else {
        return ["path: no path rounds in this window (paths off, recorded before pingem had paths, or a window over 7 days)"]
    }
    var rows = [TableRow(cells: pathColumns, isHeader: true)]
    for hop in target.path {
        var address = hop.address ?? "* * *"
        if hop.addresses.count > 1 { address += " (+\(hop.addresses.count - 1))" }
        let loss = hop.lossPct.map { fixed($0, 2) } ?? "-"
        let cells = [String(hop.ttl), address, String(hop.sent), loss, hop.forwardLossPct.map { fixed($0, 2) } ?? "-",
                     tableMs(hop.rtt.p50), tableMs(hop.rtt.p90), tableMs(hop.rtt.max)]
        // Red for forward loss only: a hop that merely does not answer is no loss.
        rows.append(TableRow(cells: cells, alert: (hop.forwardLossPct ?? 0) > 0 ? 4 : nil))
    }
    return layout(rows, leftColumns: 2, color: color) + ["where: " + whereSentence(target.summary.lossWhere)]
}

/// A time in milliseconds as the table shows it ("-" without one).
private func tableMs(_ value: Double?) -> String {
    guard let value else { return "-" }
    return fixed(value, value < 10 ? 2 : 1)
}

/// "via eth0, from 192.0.2.10, tos 0xb8": how the target was probed, where
/// any of it was set (nil: plainly).
func probedAsLabel(_ target: TargetReport) -> String? {
    var parts: [String] = []
    if let interface = target.interface { parts.append("via \(interface)") }
    if let source = target.source { parts.append("from \(source)") }
    if let tos = target.tos { parts.append("tos 0x" + String(tos, radix: 16)) }
    return parts.isEmpty ? nil : parts.joined(separator: ", ")
}

private struct TableRow {
    var cells: [String]
    var isHeader = false
    var noData = false
    /// Index of a cell to show in red (loss), if any.
    var alert: Int?
}

private func statRow(_ labels: [String], _ s: Summary) -> TableRow {
    let cover = trimmed(s.coverage * 100, 1) + "%"
    if s.hasNoData {
        return TableRow(cells: labels + ["0", "no data"] + Array(repeating: "-", count: 5) + [cover]
                        + Array(repeating: "-", count: 6), noData: true)
    }
    let loss = s.lossPct.map { fixed($0, 2) } ?? "-"
    let cells = labels + [
        String(s.sent), loss, String(s.lost), String(s.late), String(s.duplicates), String(s.errors),
        String(s.unknown), cover, tableMs(s.rtt.min), tableMs(s.rtt.p50), tableMs(s.rtt.p90), tableMs(s.rtt.p99),
        tableMs(s.rtt.max), tableMs(s.rtt.jitter),
    ]
    return TableRow(cells: cells, alert: (s.lossPct ?? 0) > 0 ? labels.count + 1 : nil)
}

private func layout(_ rows: [TableRow], leftColumns: Int, color: Bool) -> [String] {
    let count = rows.map(\.cells.count).max() ?? 0
    var widths = Array(repeating: 0, count: count)
    for row in rows {
        for (i, cell) in row.cells.enumerated() { widths[i] = max(widths[i], cell.count) }
    }
    return rows.map { row in
        var parts: [String] = []
        for (i, cell) in row.cells.enumerated() {
            let fill = String(repeating: " ", count: widths[i] - cell.count)
            var text = i < leftColumns ? cell + fill : fill + cell
            if color && i == row.alert { text = Style.red + text + Style.reset }
            parts.append(text)
        }
        var line = parts.joined(separator: "  ")
        while line.hasSuffix(" ") { line.removeLast() }
        if color && row.noData { line = Style.dim + line + Style.reset }
        if color && row.isHeader { line = Style.bold + line + Style.reset }
        return line
    }
}

/// "2 s", "250 ms", "5 m", "1 h", "1 d".
func durationLabel(_ ns: Nanoseconds) -> String {
    let units: [(Nanoseconds, String)] = [(86_400_000_000_000, "d"), (3_600_000_000_000, "h"),
                                          (60_000_000_000, "m"), (1_000_000_000, "s")]
    for (size, name) in units where ns >= size && ns % size == 0 { return "\(ns / size) \(name)" }
    if ns >= 1_000_000_000 { return trimmed(Double(ns) / 1e9, 3) + " s" }
    return trimmed(Double(ns) / 1e6, 3) + " ms"
}

/// Local wall-clock labels; a full date appears when the window spans days.
private struct LocalClock {
    var calendar: Calendar
    var timeZone: TimeZone
    var spansDays: Bool
    var zoneLabel: String
    /// Epoch labels with seconds.
    var epochSeconds = false

    init(timeZone: TimeZone, since: Nanoseconds, until: Nanoseconds) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        self.calendar = calendar
        self.timeZone = timeZone
        let start = LocalClock.date(since)
        spansDays = !calendar.isDate(start, inSameDayAs: LocalClock.date(until - 1))
        let offset = timeZone.secondsFromGMT(for: start)
        let sign = offset < 0 ? "-" : "+"
        // Foundation on Linux names UTC "GMT"; the rest of pingem says UTC.
        let name = timeZone.identifier == "GMT" ? "UTC" : timeZone.identifier
        zoneLabel = "\(name) (UTC\(sign)\(pad(abs(offset) / 3600, 2)):\(pad(abs(offset) / 60 % 60, 2)))"
    }

    static func date(_ ns: Nanoseconds) -> Date {
        Date(timeIntervalSince1970: Double(floorDivide(ns, 1_000_000_000)))
    }

    private func parts(_ ns: Nanoseconds) -> DateComponents {
        calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: LocalClock.date(ns))
    }

    private func day(_ c: DateComponents) -> String {
        "\(pad(c.year ?? 0, 4))-\(pad(c.month ?? 0, 2))-\(pad(c.day ?? 0, 2))"
    }

    /// Window bounds: always with the date.
    func full(_ ns: Nanoseconds) -> String {
        let c = parts(ns)
        return "\(day(c)) \(pad(c.hour ?? 0, 2)):\(pad(c.minute ?? 0, 2)):\(pad(c.second ?? 0, 2))"
    }

    /// Epoch starts: "HH:MM" (or "HH:MM:SS"), with the date when the window spans days.
    func short(_ ns: Nanoseconds) -> String {
        let c = parts(ns)
        var time = "\(pad(c.hour ?? 0, 2)):\(pad(c.minute ?? 0, 2))"
        if epochSeconds { time += ":\(pad(c.second ?? 0, 2))" }
        return spansDays ? "\(day(c)) \(time)" : time
    }

    /// Outage bounds: "HH:MM:SS", with the date when the window spans days.
    func precise(_ ns: Nanoseconds) -> String {
        let c = parts(ns)
        let time = "\(pad(c.hour ?? 0, 2)):\(pad(c.minute ?? 0, 2)):\(pad(c.second ?? 0, 2))"
        return spansDays ? "\(day(c)) \(time)" : time
    }
}
