// CSV: one row per target per epoch (per window without epochs), RFC 4180
// quoting, empty cells for undefined values, same number formats as JSON.
// Several databases side by side add a first column, `vantage`.
import Foundation
import Store

let csvHeader = "target,host,start,end,sent,received,lost,late,duplicates,errors,unknown,loss_pct,coverage,"
    + "rtt_min_ms,rtt_avg_ms,rtt_p50_ms,rtt_p90_ms,rtt_p99_ms,rtt_max_ms,rtt_stddev_ms,rtt_jitter_ms,"
    + "source,interface,tos,where_segment,where_ttl,where_address"

func renderCSV(_ report: Report) -> String {
    let vantages = report.targets.contains { $0.vantage != nil }
    var out = (vantages ? "vantage," : "") + csvHeader + "\n"
    for target in report.targets {
        let periods = report.epochNs == nil
            ? [Epoch(start: report.since, end: report.until, summary: target.summary)]
            : target.epochs
        for period in periods {
            let s = period.summary
            let ms = { (value: Double?) in value.map { fixed($0, 3) } ?? "" }
            let w = s.lossWhere
            // Empty when nothing was lost.
            let whereCells = [w?.segment.rawValue ?? "", w?.ttl.map(String.init) ?? "", csvField(w?.address ?? "")]
            let cells: [String] = [
                csvField(target.target), csvField(target.host), isoUTC(period.start), isoUTC(period.end),
                String(s.sent), String(s.received), String(s.lost), String(s.late), String(s.duplicates),
                String(s.errors), String(s.unknown), s.lossPct.map { fixed($0, 3) } ?? "", fixed(s.coverage, 4),
                ms(s.rtt.min), ms(s.rtt.avg), ms(s.rtt.p50), ms(s.rtt.p90), ms(s.rtt.p99), ms(s.rtt.max),
                ms(s.rtt.stddev), ms(s.rtt.jitter),
                // Last, so that columns that were there keep their place.
                csvField(target.source ?? ""), csvField(target.interface ?? ""), target.tos.map(String.init) ?? "",
            ] + whereCells
            out += (vantages ? [csvField(target.vantage ?? "")] + cells : cells).joined(separator: ",") + "\n"
        }
    }
    return out
}

func csvField(_ text: String) -> String {
    guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
