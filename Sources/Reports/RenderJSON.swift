// JSON output is a contract (pinned by a test): keys in a fixed order, numbers
// with fixed decimals, so it is written by hand rather than by JSONEncoder.
// A target of several databases side by side starts with its "vantage".
import Store

func renderJSON(_ report: Report) -> String {
    let window: JSON = .object([
        ("since", .string(isoUTC(report.since))),
        ("until", .string(isoUTC(report.until))),
        ("epoch_seconds", report.epochNs.map { .number(trimmed(Double($0) / 1e9, 3)) } ?? .null),
        ("timeout_ms", .number(trimmed(Double(report.timeoutNs) / 1e6, 3))),
        ("percentiles", .string(report.percentilesApproximate ? "approximate" : "exact")),
    ])
    let targets: [JSON] = report.targets.map { target in
        .object((target.vantage.map { [("vantage", JSON.string($0))] } ?? []) + [
            ("target", .string(target.target)),
            ("host", .string(target.host)),
            ("addresses", .array(target.addresses.map { .string($0) })),
            // How the latest session probed it; null where not set.
            ("source", target.source.map { .string($0) } ?? .null),
            ("interface", target.interface.map { .string($0) } ?? .null),
            ("tos", target.tos.map { .number(String($0)) } ?? .null),
            ("summary", .object(summaryFields(target.summary))),
            ("epochs", .array(target.epochs.map { epoch in
                .object([("start", .string(isoUTC(epoch.start))), ("end", .string(isoUTC(epoch.end)))]
                        + summaryFields(epoch.summary))
            })),
            ("outages", .array(target.outages.map { outage in
                .object([
                    ("start", .string(isoUTC(outage.start))),
                    ("end", .string(isoUTC(outage.end))),
                    ("lost", .number(String(outage.lost))),
                    ("seconds", .number(fixed(outage.seconds, 3))),
                    ("where", whereJSON(outage.lossWhere)),
                ])
            })),
            // Last, so that the fields that were there keep their place.
            ("path", .array(target.path.map(hopJSON))),
        ])
    }
    var out = ""
    JSON.object([("window", window), ("targets", .array(targets))]).write(into: &out, indent: 0)
    out += "\n"
    return out
}

private func ms(_ value: Double?) -> JSON { value.map { .number(fixed($0, 3)) } ?? .null }

private func rttJSON(_ rtt: RTTStats) -> JSON {
    .object([
        ("min", ms(rtt.min)), ("avg", ms(rtt.avg)), ("p50", ms(rtt.p50)),
        ("p90", ms(rtt.p90)), ("p99", ms(rtt.p99)), ("max", ms(rtt.max)),
        ("stddev", ms(rtt.stddev)), ("jitter", ms(rtt.jitter)),
    ])
}

/// null when nothing was lost.
private func whereJSON(_ w: PathWhere?) -> JSON {
    guard let w else { return .null }
    return .object([
        ("segment", .string(w.segment.rawValue)),
        ("ttl", w.ttl.map { .number(String($0)) } ?? .null),
        ("address", w.address.map { .string($0) } ?? .null),
    ])
}

private func hopJSON(_ hop: PathHop) -> JSON {
    .object([
        ("ttl", .number(String(hop.ttl))),
        ("address", hop.address.map { .string($0) } ?? .null),
        ("addresses", .array(hop.addresses.map { .string($0) })),
        ("sent", .number(String(hop.sent))),
        ("answered", .number(String(hop.answered))),
        ("loss_pct", hop.lossPct.map { .number(fixed($0, 3)) } ?? .null),
        ("forward_loss_pct", hop.forwardLossPct.map { .number(fixed($0, 3)) } ?? .null),
        ("rtt_ms", rttJSON(hop.rtt)),
    ])
}

private func summaryFields(_ s: Summary) -> [(String, JSON)] {
    [
        ("sent", .number(String(s.sent))),
        ("received", .number(String(s.received))),
        ("lost", .number(String(s.lost))),
        ("late", .number(String(s.late))),
        ("duplicates", .number(String(s.duplicates))),
        ("errors", .number(String(s.errors))),
        ("error_kinds", .object(s.errorKinds.sorted { $0.key < $1.key }.map { ($0.key, .number(String($0.value))) })),
        ("unknown", .number(String(s.unknown))),
        ("loss_pct", s.lossPct.map { .number(fixed($0, 3)) } ?? .null),
        ("coverage", .number(fixed(s.coverage, 4))),
        ("rtt_ms", rttJSON(s.rtt)),
        ("where", whereJSON(s.lossWhere)),
    ]
}

private indirect enum JSON {
    case object([(String, JSON)])
    case array([JSON])
    case string(String)
    /// Already formatted.
    case number(String)
    case null

    func write(into out: inout String, indent: Int) {
        // Indentation only for containers: made for every leaf it was a
        // String allocation per value (a day of 5-minute epochs is ~900,000).
        switch self {
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            let inner = String(repeating: " ", count: indent + 2)
            out += "{\n"
            for (i, (key, value)) in members.enumerated() {
                out += inner
                out += jsonString(key)
                out += ": "
                value.write(into: &out, indent: indent + 2)
                out += i == members.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: " ", count: indent) + "}"
        case .array(let elements):
            if elements.isEmpty { out += "[]"; return }
            let inner = String(repeating: " ", count: indent + 2)
            out += "[\n"
            for (i, value) in elements.enumerated() {
                out += inner
                value.write(into: &out, indent: indent + 2)
                out += i == elements.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: " ", count: indent) + "]"
        case .string(let text): out += jsonString(text)
        case .number(let text): out += text
        case .null: out += "null"
        }
    }
}

/// A JSON string literal. "</" becomes "<\/" so the output can sit inside an
/// HTML <script>; U+2028/2029 are escaped for JavaScript parsers.
func jsonString(_ text: String) -> String {
    // Keys, times and most names need no escape: printable ASCII without
    // quote, backslash or slash.
    if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C && $0 != 0x2F }) {
        return "\"" + text + "\""
    }
    var previous: Unicode.Scalar?
    return "\"" + replacingScalars(text) { scalar in
        defer { previous = scalar }
        switch scalar {
        case "\"": return "\\\""
        case "\\": return "\\\\"
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case "\u{08}": return "\\b"
        case "\u{0C}": return "\\f"
        case "/" where previous == "<": return "\\/"
        case "\u{2028}": return "\\u2028"
        case "\u{2029}": return "\\u2029"
        default:
            guard scalar.value < 0x20 || scalar.value == 0x7F else { return nil }
            let hex = String(scalar.value, radix: 16)
            return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        }
    } + "\""
}

/// `text` with each scalar for which `replacement` has a text replaced by
/// it, the others copied as they are: the one loop of every escaping here
/// (JSON strings, HTML, JSON inside HTML).
@inline(__always)
func replacingScalars(_ text: String, _ replacement: (Unicode.Scalar) -> String?) -> String {
    var out = ""
    out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
    for scalar in text.unicodeScalars {
        if let replaced = replacement(scalar) { out += replaced } else { out.unicodeScalars.append(scalar) }
    }
    return out
}
