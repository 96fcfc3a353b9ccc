// One screen of `pingem watch`: a pure function of a snapshot and the
// terminal width, so tests draw frames from hand-made reports.
//
// Invariant: every line is at most `width` characters wide, counted without
// escape codes (each cell is one column: ASCII, or one block element in color
// mode), so the terminal never wraps a line and the frame never scrolls.
import Foundation
import Store

public struct WatchFrameOptions: Sendable {
    public var width: Int
    /// ANSI colours and Unicode shades; false gives plain ASCII without escape codes.
    public var color: Bool
    /// Shown in the title line (the database path).
    public var source: String
    public var timeZone: TimeZone
    public init(width: Int, color: Bool = false, source: String = "", timeZone: TimeZone = .current) {
        self.width = width; self.color = color; self.source = source; self.timeZone = timeZone
    }
}

extension Watch {
    /// Shades from fast to slow: the epoch's p50 at most 1 ms, 2 ms, 4 ms ... 64 ms, then slower.
    static let plainShades: [Character] = [".", ":", "-", "=", "+", "*", "#", "%"]
    static let colorShades: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
    /// Strip marks: some probes of the epoch lost, all lost, none judged yet.
    static let someLost: Character = "x"
    static let allLost: Character = "X"
    static let unjudged: Character = "?"
    /// The strip never shows more than the hour that is loaded.
    static let maxStripCells = 60
    static let minStripCells = 10

    /// The frame's lines, each at most `options.width` columns.
    public static func frame(_ snapshot: WatchSnapshot, _ options: WatchFrameOptions) -> [String] {
        let width = max(options.width, 20)
        let color = options.color
        var lines: [String] = []
        let title = "pingem watch  \(clock(snapshot.now, options.timeZone))  \(options.source)"
        lines.append(paint(cut(title, width), "1", color))
        if snapshot.targets.isEmpty {
            lines.append(cut("No probes in the last hour: start pingem record, or give targets to watch.", width))
            return lines
        }

        let targets = snapshot.targets
        let labelWidth = min(20, max(6, targets.map(\.label.count).max() ?? 6))
        var columns: [Column] = [
            Column(title: "target", width: labelWidth, priority: 0, leftAligned: true) { cut($0.label, labelWidth) },
            Column(title: "last", width: 7, priority: 1) { t in
                t.lastRTT.map(milliseconds) ?? (t.lastLost ? "lost" : "-")
            },
            Column(title: "1m p50/p90", width: 11, priority: 5) { pair($0.minute.rtt) },
            Column(title: "loss", width: 6, priority: 2) { loss($0.minute) },
            Column(title: "1h p50/p90", width: 11, priority: 6) { pair($0.hour.rtt) },
            Column(title: "loss", width: 6, priority: 4) { loss($0.hour) },
        ]
        let outages = targets.map { t in
            t.outageSince.map { outageText(since: $0, now: snapshot.now, options.timeZone, where: t.outageWhere) } ?? ""
        }
        let outageWidth = outages.map(\.count).max() ?? 0
        // Drop the least important columns until the strip gets its minimum;
        // label, last RTT and the last minute's loss stay, and the strip takes what is left.
        func used(_ cols: [Column]) -> Int {
            cols.reduce(0) { $0 + $1.width + 1 } + (outageWidth > 0 ? outageWidth + 1 : 0) + 2
        }
        while used(columns) + minStripCells > width,
              let drop = columns.indices.filter({ columns[$0].priority > 2 }).max(by: { columns[$0].priority < columns[$1].priority }) {
            columns.remove(at: drop)
        }
        var stripCells = max(0, min(maxStripCells, width - used(columns)))
        if stripCells < 3 { stripCells = 0 }

        var header = columns.map { $0.leftAligned ? padRight($0.title, $0.width) : padLeft($0.title, $0.width) }
            .joined(separator: " ")
        if stripCells > 0 { header += " " + padRight(cut(" last \(stripCells)m", stripCells + 2), stripCells + 2) }
        if outageWidth > 0 { header += " " + padRight("outage", outageWidth) }
        lines.append(paint(cut(trimRight(header), width), "2", color))

        for (i, target) in targets.enumerated() {
            var line = columns.map { c in
                let text = cut(c.cell(target), c.width)
                let padded = c.leftAligned ? padRight(text, c.width) : padLeft(text, c.width)
                return c.title == "last" && target.lastLost ? paint(padded, "31", color) : padded
            }.joined(separator: " ")
            if stripCells > 0 { line += " |" + strip(target.epochs, cells: stripCells, color: color) + "|" }
            if !outages[i].isEmpty { line += " " + paint(outages[i], "1;31", color) }
            lines.append(color ? line : trimRight(line))
        }
        lines.append("")
        let legend = "strip: 1 cell = 1 min, newest right; p50 "
            + (color ? String(colorShades) : String(plainShades))
            + " <=1ms..>64ms; x some lost; X all lost; blank no data"
        lines.append(paint(cut(legend, width), "2", color))
        return lines
    }

    /// The last `cells` epochs, one character each, right-aligned; blank where there is no data.
    static func strip(_ epochs: [Epoch], cells: Int, color: Bool) -> String {
        let shown = epochs.suffix(cells)
        var text = String(repeating: " ", count: cells - shown.count)
        for epoch in shown {
            let s = epoch.summary
            if s.hasNoData { text += " "; continue }
            guard let loss = s.lossPct else { text += String(unjudged); continue }
            if loss >= 100 { text += paint(String(allLost), "1;31", color); continue }
            if loss > 0 { text += paint(String(someLost), "31", color); continue }
            let level = shadeLevel(s.rtt.p50 ?? 0)
            let cell = String((color ? colorShades : plainShades)[level])
            text += paint(cell, level < 4 ? "32" : level < 6 ? "33" : "35", color)
        }
        return text
    }

    /// 0 for at most 1 ms, then one level per doubling, 7 above 64 ms.
    static func shadeLevel(_ ms: Double) -> Int {
        var level = 0
        var bound = 1.0
        while level < 7 && ms > bound { level += 1; bound *= 2 }
        return level
    }

    /// "OUTAGE 2m05s since 20:10:05", then ", where: hop 3, 203.0.113.9" in
    /// the report's words when a path round saw where the loss begins.
    static func outageText(since: Nanoseconds, now: Nanoseconds, _ timeZone: TimeZone, where lossWhere: PathWhere? = nil) -> String {
        "OUTAGE \(span(max(0, now - since))) since \(clock(since, timeZone))" + (lossWhere.map { ", " + whereLabel($0) } ?? "")
    }

    /// "45s", "2m05s", "1h02m".
    static func span(_ ns: Nanoseconds) -> String {
        let s = ns / 1_000_000_000
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(pad(Int(s % 60), 2))s" }
        return "\(s / 3600)h\(pad(Int(s / 60 % 60), 2))m"
    }

    /// "HH:MM:SS" in `timeZone`.
    static func clock(_ ns: Nanoseconds, _ timeZone: TimeZone) -> String {
        let seconds = floorDivide(ns, 1_000_000_000)
        let offset = Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(seconds))))
        let ofDay = Int(((seconds + offset) % 86_400 + 86_400) % 86_400)
        return "\(pad(ofDay / 3600, 2)):\(pad(ofDay / 60 % 60, 2)):\(pad(ofDay % 60, 2))"
    }

    static func milliseconds(_ ms: Double) -> String {
        (ms < 10 ? fixed(ms, 2) : ms < 100 ? fixed(ms, 1) : fixed(ms, 0)) + "ms"
    }

    static func pair(_ rtt: RTTStats) -> String {
        guard let p50 = rtt.p50, let p90 = rtt.p90 else { return "-" }
        return milliseconds(p50).dropLast(2) + "/" + milliseconds(p90)
    }

    static func loss(_ s: Summary) -> String {
        guard let pct = s.lossPct else { return "-" }
        return (pct == 0 || pct >= 10 ? fixed(pct, 0) : fixed(pct, 1)) + "%"
    }

    struct Column {
        var title: String
        var width: Int
        /// 0 to 2 are never dropped; higher numbers are dropped first on narrow terminals.
        var priority: Int
        var leftAligned = false
        var cell: (WatchTarget) -> String
    }
}

private func paint(_ text: String, _ sgr: String, _ color: Bool) -> String {
    color ? "\u{1B}[\(sgr)m\(text)\u{1B}[0m" : text
}

/// At most `width` characters; a cut text ends in "~" so it is never mistaken for whole.
private func cut(_ text: String, _ width: Int) -> String {
    if text.count <= width { return text }
    if width <= 1 { return String(text.prefix(width)) }
    return String(text.prefix(width - 1)) + "~"
}

private func padRight(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

private func padLeft(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

private func trimRight(_ text: String) -> String {
    var text = text
    while text.hasSuffix(" ") { text.removeLast() }
    return text
}
