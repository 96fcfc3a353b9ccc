// `pingem report --fail-if`: thresholds on each target's window summary, for
// cron and CI. A field without a value (no RTT because nothing was received,
// no loss because nothing could be judged) crosses no threshold: use
// `coverage<...` to fail when the recorder did not run.
import Store

public struct Threshold: Sendable, Equatable, CustomStringConvertible {
    public enum Field: String, Sendable, CaseIterable {
        case lossPct = "loss_pct", lost, late, errors, unknown
        case p50, p90, p99, max, avg, jitter, coverage

        var isRTT: Bool {
            switch self {
            case .p50, .p90, .p99, .max, .avg, .jitter: return true
            default: return false
            }
        }
    }
    public enum Operator: String, Sendable, CaseIterable {
        // Two-character operators first, so ">=" is not read as ">" and "=...".
        case greaterOrEqual = ">=", lessOrEqual = "<=", greater = ">", less = "<"
    }

    public var field: Field
    public var op: Operator
    /// Milliseconds for RTT fields, percent for loss_pct and coverage, a count otherwise.
    public var value: Double
    /// The expression as written, for messages.
    public var text: String
    public var description: String { text }

    /// Parses "loss_pct>1", "p90>=80ms", "coverage<99%"; a ReportError with one sentence otherwise.
    public init(parsing expression: String) throws {
        let text = expression.filter { !$0.isWhitespace }
        let fields = Field.allCases.map(\.rawValue).joined(separator: ", ")
        guard let op = Operator.allCases.first(where: { text.contains($0.rawValue) }),
              let range = text.range(of: op.rawValue) else {
            throw ReportError("--fail-if \"\(expression)\" has no comparison: write FIELD>VALUE, e.g. loss_pct>1 or p90>80ms (operators > >= < <=).")
        }
        let name = String(text[..<range.lowerBound])
        let valueText = String(text[range.upperBound...])
        guard let field = Field(rawValue: name.lowercased()) else {
            throw ReportError("--fail-if \"\(expression)\": unknown field \"\(name)\", use one of \(fields).")
        }
        let value: Double
        if field.isRTT {
            if Double(valueText) != nil {
                throw ReportError("--fail-if \"\(expression)\": give \(field.rawValue) a duration with a unit, e.g. \(field.rawValue)>80ms.")
            }
            do { value = Double(try parseDuration(valueText)) / 1e6 } catch {
                throw ReportError("--fail-if \"\(expression)\": \"\(valueText)\" is not a duration, write e.g. 80ms or 1.5s.")
            }
        } else {
            let number = field == .lossPct || field == .coverage
                ? (valueText.hasSuffix("%") ? String(valueText.dropLast()) : valueText) : valueText
            guard let parsed = Double(number), parsed.isFinite else {
                throw ReportError("--fail-if \"\(expression)\": \"\(valueText)\" is not a number, write e.g. \(field.rawValue)>1.")
            }
            value = parsed
        }
        self.field = field; self.op = op; self.value = value; self.text = text
    }

    /// The summary's value of this field, in the threshold's unit; nil when undefined.
    public func measure(_ s: Summary) -> Double? {
        switch field {
        case .lossPct: return s.lossPct
        case .lost: return Double(s.lost)
        case .late: return Double(s.late)
        case .errors: return Double(s.errors)
        case .unknown: return Double(s.unknown)
        case .p50: return s.rtt.p50
        case .p90: return s.rtt.p90
        case .p99: return s.rtt.p99
        case .max: return s.rtt.max
        case .avg: return s.rtt.avg
        case .jitter: return s.rtt.jitter
        case .coverage: return s.coverage * 100
        }
    }

    public func isCrossed(by value: Double) -> Bool {
        switch op {
        case .greater: return value > self.value
        case .greaterOrEqual: return value >= self.value
        case .less: return value < self.value
        case .lessOrEqual: return value <= self.value
        }
    }

    /// One line per target and threshold crossed, in report order:
    /// "router: p90 is 85.2ms, crossing p90>80ms" ("router at office: ..."
    /// when several databases are reported side by side).
    public static func crossings(_ thresholds: [Threshold], in report: Report) -> [String] {
        var lines: [String] = []
        for target in report.targets {
            for threshold in thresholds {
                guard let value = threshold.measure(target.summary), threshold.isCrossed(by: value) else { continue }
                let shown: String
                switch threshold.field {
                case .lossPct, .coverage: shown = trimmed(value, 3) + "%"
                case .lost, .late, .errors, .unknown: shown = trimmed(value, 0)
                default: shown = trimmed(value, 3) + "ms"
                }
                let name = target.vantage.map { "\(target.target) at \($0)" } ?? target.target
                lines.append("\(name): \(threshold.field.rawValue) is \(shown), crossing \(threshold.text)")
            }
        }
        return lines
    }
}
