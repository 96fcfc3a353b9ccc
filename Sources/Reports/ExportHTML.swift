// `pingem export html`: the data the page embeds. Every per-epoch figure comes
// from makeReport at one of several epoch widths (never a second aggregation),
// so a number in the page equals `pingem report --format json` for the same
// window, epoch and timeout. Round-trip times are embedded as integer
// microseconds: the JSON report's three decimals in milliseconds, exactly.
//
// Invariant: the data sits in <script type="application/json">; jsonString
// escapes "</", and embedJSON escapes every "<", ">", "&", U+2028 and U+2029
// besides, so no user string can end the block or start markup.
import Store

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What one export shows; `report` carries the window, timeout and targets.
public struct ExportOptions: Sendable, Equatable {
    public var report: ReportOptions
    /// When the page was made (Unix ns), shown in its title.
    public var generatedNs: Nanoseconds
    /// Single probes are embedded when the window is at most this long.
    public var rawProbeLimitNs: Nanoseconds
    /// One epoch width chosen by the viewer (`pingem serve`'s epoch control):
    /// the page then embeds only that level and no single probes, so it draws
    /// exactly the epochs `pingem report --epoch` gives. nil: the ladder.
    public var chosenEpochNs: Nanoseconds?
    public init(report: ReportOptions, generatedNs: Nanoseconds, rawProbeLimitNs: Nanoseconds = 6 * 3600 * 1_000_000_000,
                chosenEpochNs: Nanoseconds? = nil) {
        self.report = report; self.generatedNs = generatedNs; self.rawProbeLimitNs = rawProbeLimitNs
        self.chosenEpochNs = chosenEpochNs
    }
}

private let secondNs: Nanoseconds = 1_000_000_000

/// The epoch widths a page of a window this long embeds, finest first: every
/// width of the ladder from the finest that keeps at most `maximumEpochs`
/// epochs (1 minute for 7 days) to the first that gives a whole-window view
/// of at most 200 epochs.
public func exportEpochWidths(span: Nanoseconds, maximumEpochs: Int64 = 12_000) -> [Nanoseconds] {
    let ladder: [Int64] = [1, 10, 60, 300, 3600, 6 * 3600, 86400, 7 * 86400].map { $0 * secondNs }
    var widths: [Nanoseconds] = []
    for width in ladder where span / width <= maximumEpochs {
        widths.append(width)
        if span / width <= 200 { break }
    }
    return widths.isEmpty ? [ladder.last!] : widths
}

private let hourNs: Nanoseconds = 3600 * secondNs
private let weekNs: Nanoseconds = 7 * 86400 * secondNs

/// The epoch widths the page embeds, finest first. A window longer than a
/// week embeds only levels of an hour or more, and a day among them: those
/// come from hourly summaries, and the file of a year stays a few MB.
func exportLevelWidths(_ options: ExportOptions) -> [Nanoseconds] {
    if let chosen = options.chosenEpochNs { return [chosen] }
    let span = options.report.until - options.report.since
    let ladder = exportEpochWidths(span: span)
    guard span > weekNs else { return ladder }
    var widths = ladder.filter { $0 >= hourNs }
    if widths.first != hourNs && span / hourNs <= 12_000 { widths.insert(hourNs, at: 0) }
    if !widths.contains(86400 * secondNs) && span >= 2 * 86400 * secondNs {
        widths.append(86400 * secondNs)
        widths.sort()
    }
    return widths
}

/// Whether this export reads hourly summaries: every embedded level is an
/// hour or more and no single probes are embedded. Shorter windows need raw
/// probes for their finer levels anyway, so they classify every probe.
public func exportUsesSummaries(_ options: ExportOptions) -> Bool {
    let span = options.report.until - options.report.since
    let probes = span <= options.rawProbeLimitNs && options.chosenEpochNs == nil
    return !probes && exportLevelWidths(options).allSatisfy { $0 >= hourNs }
}

/// What `pingem export html` reads: with summaries where exportUsesSummaries
/// says so (unless `exact`), raw probes only of the hours they cannot answer
/// at the finest embedded level; else every probe of the window.
public func exportInput(from db: Database, _ options: ExportOptions, exact: Bool) throws -> ReportInput {
    var kept = KeptSummaries()
    return try exportInput(from: db, options, exact: exact, kept: &kept)
}

/// exportInput, with the summaries read before kept in `kept` (serve's live page).
public func exportInput(from db: Database, _ options: ExportOptions, exact: Bool,
                        kept: inout KeptSummaries) throws -> ReportInput {
    var input: ReportInput
    if !exact && exportUsesSummaries(options) {
        var load = options.report
        load.epochNs = exportLevelWidths(options).first
        input = try ReportInput.load(from: db, options: load, summaries: true, kept: &kept)
    } else {
        input = try ReportInput.load(from: db, options: options.report)
    }
    // As `pingem report` reads them: the hop strips and every outage's
    // `where` come from the same rounds the report judges.
    // Its summaries where every level's epochs hold whole hours, the raw
    // rounds elsewhere (and all of them where the probes are read raw).
    try input.loadPathProbes(from: db, options: options.report, summaries: !exact, widths: exportLevelWidths(options))
    return input
}

/// The page's data block as JSON (not yet escaped for HTML). With summaries
/// in `input` (exportInput), each level is the summary-path report at its
/// width, and the whole-window histogram is drawn from RTT buckets.
public func exportData(_ input: ReportInput, _ options: ExportOptions, progress: ((String) -> Void)? = nil) throws -> String {
    let widths = exportLevelWidths(options)
    progress?("aggregating epochs of " + widths.map { trimmed(Double($0) / 1e9, 0) + " s" }.joined(separator: ", "))
    return try renderExportData(try exportFigures(input, options, widths: widths), options)
}

/// What a page shows before it is written out: each level's report, finest
/// first (the last one's whole-window figures are the page's), each selected
/// target's whole-window histogram as JSON, and the classified probes the
/// single probes are drawn from (raw input only). The live page
/// (ExportHTMLLive.swift) computes its levels' epochs through this too.
struct ExportFigures {
    var reports: [Report]
    var histograms: [String]
    var classified: [[ClassifiedProbe]]
}

/// The figures of `widths` (each level's report over the window of
/// `options`); `histograms` false skips the whole-window histograms;
/// `pathRuns`: summarized path hours kept between calls (the live page).
func exportFigures(_ input: ReportInput, _ options: ExportOptions, widths: [Nanoseconds],
                   histograms wanted: Bool = true, pathRuns: KeptPathRuns? = nil) throws -> ExportFigures {
    let r = options.report
    let reports: [Report], histograms: [String], classified: [[ClassifiedProbe]]
    if input.summaries.isEmpty {
        (reports, classified) = try makeReports(input, r, epochWidths: widths, pathRuns: pathRuns)
        histograms = !wanted ? [] : classified.map { probes in
            histogram { each in for probe in probes where probe.verdict == .received { each(Double(probe.rttNs), 1) } }
        }
    } else {
        let buckets: [[Int]]
        (reports, buckets) = try summaryReports(input, r, epochWidths: widths, histograms: wanted, pathRuns: pathRuns)
        classified = []
        histograms = zip(buckets, reports.last?.targets ?? []).map { counts, target in
            histogram { each in bucketValues(counts, target.summary.rtt, each) }
        }
    }
    return ExportFigures(reports: reports, histograms: histograms, classified: classified)
}

/// The data block of `figures`: levels at exportLevelWidths(options).
func renderExportData(_ figures: ExportFigures, _ options: ExportOptions) throws -> String {
    let r = options.report
    let span = r.until - r.since
    let widths = exportLevelWidths(options)
    let (reports, histograms, classified) = (figures.reports, figures.histograms, figures.classified)
    let levels = Array(zip(widths, reports))
    guard let whole = reports.last else { throw ReportError("Nothing to export.") }

    var out = "{"
    out += "\"version\":1,\"since_ms\":\(ms(r.since)),\"until_ms\":\(ms(r.until)),"
    out += "\"generated_ms\":\(ms(options.generatedNs)),\"timeout_ms\":\(trimmed(Double(r.timeoutNs) / 1e6, 3)),"
    out += "\"outage_min\":\(r.outageMin),"
    out += "\"percentiles\":" + (reports.contains(where: \.percentilesApproximate) ? "\"approximate\"," : "\"exact\",")
    out += "\"targets\":["
    for (i, target) in whole.targets.enumerated() {
        if i > 0 { out += "," }
        out += "{\"target\":\(jsonString(target.target)),\"host\":\(jsonString(target.host)),"
        out += "\"addresses\":[" + target.addresses.map(jsonString).joined(separator: ",") + "],"
        out += "\"summary\":" + summaryObject(target.summary) + ","
        out += "\"outages\":[" + target.outages.map(outageJSON).joined(separator: ",") + "],"
        if !target.path.isEmpty { out += "\"path\":[" + target.path.map(pathRowJSON).joined(separator: ",") + "]," }
        out += "\"histogram\":" + histograms[i] + "}"
    }
    out += "],\"levels\":["
    out += levels.map { width, report in levelJSON(width, report, since: r.since) }.joined(separator: ",")
    out += "],\"probes\":"
    if span <= options.rawProbeLimitNs && options.chosenEpochNs == nil && !classified.isEmpty {
        out += probesJSON(classified, since: r.since)
    } else {
        out += "null"
    }
    out += "}"
    return out
}

/// One level of the data block: its width, the epochs' bounds as the report
/// cut them (local days are 23 or 25 hours at a daylight saving change), in
/// ms from `since` (each epoch's start, then the last one's end), and each
/// target's columns.
private func levelJSON(_ width: Nanoseconds, _ report: Report, since: Nanoseconds) -> String {
    "{\"epoch_ms\":\(ms(width)),\"bounds_ms\":[" + epochBounds(report, since: since) + "],\"targets\":["
        + report.targets.map { epochColumns($0.epochs) }.joined(separator: ",") + "]}"
}

/// An outage as [start, end, lost], and its `where` in the report's words
/// when a path round saw it: "unknown" (no rounds: paths off, not yet
/// discovered) is left off, so a page without path rounds says nothing of it.
private func outageJSON(_ o: Outage) -> String {
    let label = o.lossWhere.segment == .unknown ? "" : "," + jsonString(whereLabel(o.lossWhere))
    return "[\(ms(o.start)),\(ms(o.end)),\(o.lost)\(label)]"
}

/// One row of a target's hop strip: the window's hop, the target last.
private func pathRowJSON(_ hop: PathHop) -> String {
    "{\"ttl\":\(hop.ttl)," + (hop.isTarget ? "\"target\":true," : "")
        + "\"address\":" + (hop.address.map(jsonString) ?? "null") + ",\"sent\":\(hop.sent),\"answered\":\(hop.answered),"
        + "\"loss_pct\":" + (hop.lossPct.map { fixed($0, 3) } ?? "null") + ","
        + "\"forward_loss_pct\":" + (hop.forwardLossPct.map { fixed($0, 3) } ?? "null") + "}"
}

/// An epoch's hop counts in a few characters, since most epochs are clean:
/// "" without rounds; else "R/m", R the most probes any hop was sent (the
/// epoch's rounds) and m the highest router TTL, then one "ttl:sent:
/// answered:forward-lost" for each hop that differs from R sent, R
/// answered, none forward lost ("t" for the target). So a hop not listed is
/// a router up to m or the target, sent and answered R times, or a router
/// above m, not probed; a router up to m or a target not probed at all is
/// listed as "ttl:0:0:0" or "t:0:0:0".
func hopCells(_ path: [PathHopCounts]) -> String {
    guard let rounds = path.map(\.sent).max() else { return "" }
    let routers = path.filter { !$0.isTarget }
    let highest = routers.map(\.ttl).max() ?? 0
    var text = "\(rounds)/\(highest)"
    func odd(_ name: String, _ hop: PathHopCounts?) {
        guard let hop else { text += " \(name):0:0:0"; return }
        if hop.sent != rounds || hop.answered != rounds || hop.forwardLost != 0 {
            text += " \(name):\(hop.sent):\(hop.answered):\(hop.forwardLost)"
        }
    }
    if highest > 0 { for ttl in 1...highest { odd(String(ttl), routers.first { $0.ttl == ttl }) } }
    odd("t", path.first(where: \.isTarget))
    return text
}

/// The data block's single probes: one object per target.
private func probesJSON(_ classified: [[ClassifiedProbe]], since: Nanoseconds) -> String {
    "[" + classified.map { probeColumns($0, since: since) }.joined(separator: ",") + "]"
}

/// One level of the page's data over the window of `options`, at the epoch
/// it chose (`chosenEpochNs`): exactly what exportData embeds as that level
/// for that window, bounds in ms from its start. serve's page fetches these
/// (GET /level) for epochs finer than a long window embeds. `input` is what
/// exportInput reads for `options`.
public func exportLevel(_ input: ReportInput, _ options: ExportOptions) throws -> String {
    guard let width = options.chosenEpochNs else { throw ReportError("Choose an epoch width for the level.") }
    let figures = try exportFigures(input, options, widths: [width], histograms: false)
    return levelJSON(width, figures.reports[0], since: options.report.since)
}

/// The single probes of the page's data over the window of `options` (no
/// chosen epoch), as exportData embeds them for a window of at most
/// `rawProbeLimitNs`, from raw probes: serve's page fetches these
/// (GET /probes) when it zooms into a long window.
public func exportProbes(_ input: ReportInput, _ options: ExportOptions) throws -> String {
    let span = options.report.until - options.report.since
    guard options.chosenEpochNs == nil, span <= options.rawProbeLimitNs, input.summaries.isEmpty else {
        throw ReportError("Single probes are given for windows of at most \(trimmed(Double(options.rawProbeLimitNs) / 3.6e12, 1)) hours.")
    }
    // Any width classifies the same probes: the coarsest embedded is the cheapest.
    let figures = try exportFigures(input, options, widths: [exportLevelWidths(options).last!], histograms: false)
    return probesJSON(figures.classified, since: options.report.since)
}

private func ms(_ ns: Nanoseconds) -> String { String(floorDivide(ns, 1_000_000)) }

/// Every epoch's start and the last one's end, in ms from `since`: the same
/// for every target of a report.
private func epochBounds(_ report: Report, since: Nanoseconds) -> String {
    guard let epochs = report.targets.first?.epochs, let last = epochs.last else { return "" }
    return (epochs.map { ms($0.start - since) } + [ms(last.end - since)]).joined(separator: ",")
}

/// Milliseconds as integer microseconds, as the JSON report rounds them.
private func micros(_ value: Double?) -> String {
    guard let value else { return "null" }
    return fixed(value * 1000, 0)
}

private func summaryObject(_ s: Summary) -> String {
    var out = "{\"sent\":\(s.sent),\"received\":\(s.received),\"lost\":\(s.lost),\"late\":\(s.late),"
    out += "\"errors\":\(s.errors),\"unknown\":\(s.unknown),\"duplicates\":\(s.duplicates),"
    out += "\"loss_pct\":" + (s.lossPct.map { fixed($0, 3) } ?? "null") + ","
    out += "\"coverage\":" + trimmed(s.coverage, 4) + ","
    out += "\"error_kinds\":{" + s.errorKinds.sorted { $0.key < $1.key }
        .map { "\(jsonString($0.key)):\($0.value)" }.joined(separator: ",") + "},"
    out += "\"rtt_us\":{\"min\":\(micros(s.rtt.min)),\"avg\":\(micros(s.rtt.avg)),\"p50\":\(micros(s.rtt.p50)),"
    out += "\"p90\":\(micros(s.rtt.p90)),\"p99\":\(micros(s.rtt.p99)),\"max\":\(micros(s.rtt.max)),"
    out += "\"stddev\":\(micros(s.rtt.stddev)),\"jitter\":\(micros(s.rtt.jitter))}}"
    return out
}

/// One array per figure (columns are far smaller than one object per epoch).
private func epochColumns(_ epochs: [Epoch]) -> String {
    // Row by row into the columns: an epoch's summary is read once, not once
    // per column (eleven copies of it, arrays retained, were most of a live
    // page's rendering of a month).
    let names = ["sent", "lost", "late", "errors", "unknown", "coverage", "min", "p50", "p90", "p99", "max"]
    var columns = names.map { name -> String in
        var text = "\"\(name)\":["
        text.reserveCapacity(epochs.count * 6)
        return text
    }
    for i in epochs.indices {
        let s = epochs[i].summary
        let cells = [String(s.sent), String(s.lost), String(s.late), String(s.errors), String(s.unknown),
                     trimmed(s.coverage, 4), micros(s.rtt.min), micros(s.rtt.p50), micros(s.rtt.p90),
                     micros(s.rtt.p99), micros(s.rtt.max)]
        for c in columns.indices {
            if i > 0 { columns[c] += "," }
            columns[c] += cells[c]
        }
    }
    // The hop strip's cells, only for a target with path rounds in the level.
    if epochs.contains(where: { !$0.path.isEmpty }) {
        columns.append("\"path\":[" + epochs.map { jsonString(hopCells($0.path)) }.joined(separator: ","))
    }
    return "{" + columns.map { $0 + "]" }.joined(separator: ",") + "}"
}

/// Single probes: send time as a delta (ms) from the previous, and an outcome
/// code: rtt in microseconds when received, else -1 lost silently, -2 late,
/// -3 error (send or ICMP), -4 unknown (the recorder stopped first).
private func probeColumns(_ probes: [ClassifiedProbe], since: Nanoseconds) -> String {
    var t = "[", v = "["
    var previous = floorDivide(since, 1_000_000)
    for (i, probe) in probes.enumerated() {
        if i > 0 { t += ","; v += "," }
        let at = floorDivide(probe.sentNs, 1_000_000)
        t += String(at - previous)
        previous = at
        switch probe.verdict {
        case .received: v += String((probe.rttNs + 500) / 1000)
        case .unknown: v += "-4"
        case .late: v += "-2"
        case .lost: v += probe.failure != nil ? "-3" : "-1"
        }
    }
    return "{\"dt_ms\":" + t + "],\"outcome\":" + v + "]}"
}

/// Counts of received round-trip times in 48 logarithmic bins over [min, max];
/// `values` hands each RTT (ns) and how often it occurs to its argument, and
/// is called twice (bounds, then counts) so no copy of the probes is made.
private func histogram(_ values: (_ each: (Double, Int) -> Void) -> Void) -> String {
    var low = Double.infinity, high = -Double.infinity
    values { rtt, _ in low = min(low, rtt); high = max(high, rtt) }
    guard low <= high else { return "null" }
    let bins = 48
    let lo = max(low, 1000), hi = max(high, lo * 1.01)
    let scale = Double(bins) / (log(hi) - log(lo))
    var counts = [Int](repeating: 0, count: bins)
    values { rtt, n in
        let k = Int((log(max(rtt, 1000)) - log(lo)) * scale)
        counts[min(bins - 1, max(0, k))] += n
    }
    return "{\"lo_us\":\(fixed(lo / 1000, 0)),\"hi_us\":\(fixed(hi / 1000, 0)),\"counts\":["
        + counts.map(String.init).joined(separator: ",") + "]}"
}

/// Each non-empty RTT bucket's middle (ns), kept inside the window's exact
/// min and max, with its count: the bins then span what the summary says.
private func bucketValues(_ counts: [Int], _ rtt: RTTStats, _ each: (Double, Int) -> Void) {
    guard let minimum = rtt.min, let maximum = rtt.max else { return }
    for (bucket, n) in counts.enumerated() where n > 0 {
        each(min(maximum * 1e6, max(minimum * 1e6, rttBucketMiddle(Int32(bucket)))), n)
    }
}

/// `json` made safe inside <script type="application/json">: "<", ">", "&"
/// and the JavaScript line separators become \u escapes, which JSON.parse
/// reads back as the same characters. They can only occur inside strings.
public func embedJSON(_ json: String) -> String {
    replacingScalars(json) { scalar in
        switch scalar {
        case "<": "\\u003c"
        case ">": "\\u003e"
        case "&": "\\u0026"
        case "\u{2028}": "\\u2028"
        case "\u{2029}": "\\u2029"
        default: nil
        }
    }
}

/// Text safe as HTML element content or a quoted attribute value.
public func escapeHTML(_ text: String) -> String {
    replacingScalars(text) { scalar in
        switch scalar {
        case "<": "&lt;"
        case ">": "&gt;"
        case "&": "&amp;"
        case "\"": "&quot;"
        case "'": "&#39;"
        default: nil
        }
    }
}

/// The whole page: one self-contained HTML document.
public func exportHTML(_ input: ReportInput, _ options: ExportOptions, progress: ((String) -> Void)? = nil) throws -> String {
    let data = try exportData(input, options, progress: progress)
    progress?("writing the page")
    return exportHTML(data: data, options)
}

/// The page of a data block exportData (or LivePageCache) made for `options`.
public func exportHTML(data: String, _ options: ExportOptions) -> String {
    let title = "pingem: \(isoUTC(options.report.since)) to \(isoUTC(options.report.until))"
    return htmlPage(title: escapeHTML(title), data: embedJSON(data))
}

/// The default output name: pingem-<start>-<end>.html, times in UTC to the
/// minute ("pingem-20261118T2200Z-20261125T2200Z.html"), safe in any shell.
public func exportFileName(since: Nanoseconds, until: Nanoseconds) -> String {
    func compact(_ ns: Nanoseconds) -> String {
        let iso = isoUTC(ns)  // 2026-11-25T21:00:00.000Z
        let digits = iso.prefix(16).filter { $0 != "-" && $0 != ":" }
        return digits + "Z"
    }
    return "pingem-\(compact(since))-\(compact(until)).html"
}
