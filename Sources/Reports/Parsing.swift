// Durations, instants and windows as the user types them on the command line.
// Durations are parsed with integer arithmetic where it matters, so "1.5s" is
// exactly 1_500_000_000 ns.
import Foundation
import Store

private let durationUnits: [(String, Nanoseconds)] = [
    ("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000),
    ("m", 60_000_000_000), ("h", 3_600_000_000_000), ("d", 86_400_000_000_000),
    ("w", 604_800_000_000_000),
]

/// "250ms", "1s", "1.5s", "5m", "24h", "7d", "2w", "1h30m", "100us": a positive duration.
public func parseDuration(_ text: String) throws -> Nanoseconds {
    let bad = ReportError("\"\(text)\" is not a duration: write a number with a unit, such as 250ms, 1.5s, 5m, 24h, 7d or 1h30m.")
    var rest = Substring(text.trimmingCharacters(in: .whitespaces))
    if rest.isEmpty { throw bad }
    var total: Nanoseconds = 0
    while !rest.isEmpty {
        let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        rest = rest.dropFirst(number.count)
        let unitText = rest.prefix { !($0.isASCII && ($0.isNumber || $0 == ".")) }
        rest = rest.dropFirst(unitText.count)
        guard let unit = durationUnits.first(where: { $0.0 == unitText })?.1 else { throw bad }
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let wholeText = parts.first, !(wholeText.isEmpty && parts.count == 1) else { throw bad }
        let whole = wholeText.isEmpty ? 0 : Int64(wholeText)
        guard let whole else { throw bad }
        var value = whole.multipliedReportingOverflow(by: unit)
        if parts.count == 2 {
            let fraction = parts[1]
            guard !fraction.isEmpty, fraction.count <= 18, let digits = Int64(fraction) else { throw bad }
            let scale = (0..<fraction.count).reduce(1.0) { r, _ in r * 10 }
            let extra = Int64((Double(digits) / scale * Double(unit)).rounded())
            let added = value.partialValue.addingReportingOverflow(extra)
            value = (added.partialValue, value.overflow || added.overflow)
        }
        let sum = total.addingReportingOverflow(value.partialValue)
        if value.overflow || sum.overflow { throw ReportError("\"\(text)\" is too long a duration: give at most a few centuries.") }
        total = sum.partialValue
    }
    if total <= 0 { throw ReportError("\"\(text)\" is not a positive duration: give a length greater than zero.") }
    return total
}

/// An instant: "2026-11-24" (local midnight), "2026-11-24T18:00",
/// "2026-11-24 18:00:05", "2026-11-24T18:00:05.123", optionally followed by
/// "Z", "+01:00", "-0500" or "+01". Without a zone the time is in `timeZone`.
public func parseTime(_ text: String, timeZone: TimeZone) throws -> Nanoseconds {
    let bad = ReportError("\"\(text)\" is not a date and time: write it like 2026-11-24, 2026-11-24T18:00 or 2026-11-24 18:00:05+01:00.")
    var scanner = TimeScanner(Array(text.trimmingCharacters(in: .whitespaces).utf8))
    guard let year = scanner.digits(4), scanner.take("-"), let month = scanner.digits(2), scanner.take("-"),
          let day = scanner.digits(2) else { throw bad }
    var hour = 0, minute = 0, second = 0
    var fractionNs: Int64 = 0
    var offset: Int?
    if !scanner.atEnd {
        guard scanner.take("T") || scanner.take(" ") || scanner.take("t"),
              let h = scanner.digits(2), scanner.take(":"), let m = scanner.digits(2) else { throw bad }
        hour = h; minute = m
        if scanner.take(":") {
            guard let s = scanner.digits(2) else { throw bad }
            second = s
            if scanner.take(".") || scanner.take(",") {
                var digits = 0
                var scale: Int64 = 100_000_000
                while let d = scanner.digits(1) {
                    if scale > 0 { fractionNs += Int64(d) * scale; scale /= 10 }
                    digits += 1
                }
                if digits == 0 { throw bad }
            }
        }
        if scanner.take("Z") || scanner.take("z") {
            offset = 0
        } else if let sign = scanner.sign() {
            guard let h = scanner.digits(2), h <= 23 else { throw bad }
            var m = 0
            if scanner.take(":") {
                guard let mm = scanner.digits(2) else { throw bad }
                m = mm
            } else if let mm = scanner.digits(2) {
                m = mm
            }
            guard m <= 59 else { throw bad }
            offset = sign * (h * 3600 + m * 60)
        }
        guard scanner.atEnd else { throw bad }
    }
    guard (1...12).contains(month), day >= 1, day <= daysInMonth(year, month),
          hour <= 23, minute <= 59, second <= 59 else {
        throw ReportError("\"\(text)\" is not a real date and time: check the month, day, hour and minute.")
    }
    let seconds: Int64
    if let offset {
        seconds = daysFromCivil(year, month, day) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offset)
    } else {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        guard let date = calendar.date(from: parts) else { throw bad }
        seconds = Int64(date.timeIntervalSince1970.rounded())
    }
    return seconds * 1_000_000_000 + fractionNs
}

/// The report window from --last / --since / --until; the last 24 hours by default.
public func resolveWindow(
    last: String?, since: String?, until: String?, now: Nanoseconds, timeZone: TimeZone
) throws -> (since: Nanoseconds, until: Nanoseconds) {
    if last != nil && since != nil {
        throw ReportError("--last and --since both give the window's start: use only one of them.")
    }
    let end = try until.map { try parseTime($0, timeZone: timeZone) } ?? now
    let start: Nanoseconds
    if let since {
        start = try parseTime(since, timeZone: timeZone)
    } else {
        start = end - (try parseDuration(last ?? "24h"))
    }
    if start >= end {
        throw ReportError("The report window is empty: choose a start (--since) before its end (--until).")
    }
    return (start, end)
}

// MARK: - Calendar arithmetic (proleptic Gregorian, UTC)

func isLeapYear(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

func daysInMonth(_ y: Int, _ m: Int) -> Int {
    [31, isLeapYear(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
}

/// Days since 1970-01-01 (Howard Hinnant's days_from_civil).
func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
    let y = Int64(month <= 2 ? year - 1 : year)
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = Int64((month + 9) % 12)
    let doy = (153 * mp + 2) / 5 + Int64(day) - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01 (Hinnant's civil_from_days).
func civilFromDays(_ days: Int64) -> (year: Int, month: Int, day: Int) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (Int(yoe + era * 400 + (month <= 2 ? 1 : 0)), Int(month), Int(day))
}

private struct TimeScanner {
    var bytes: [UInt8]
    var position = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var atEnd: Bool { position == bytes.count }

    mutating func take(_ character: Unicode.Scalar) -> Bool {
        guard position < bytes.count, bytes[position] == UInt8(character.value) else { return false }
        position += 1
        return true
    }

    /// Exactly `count` ASCII digits as a number, else nil (and nothing consumed).
    mutating func digits(_ count: Int) -> Int? {
        guard position + count <= bytes.count else { return nil }
        var value = 0
        for byte in bytes[position..<position + count] {
            guard byte >= 48 && byte <= 57 else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        position += count
        return value
    }

    mutating func sign() -> Int? {
        if take("+") { return 1 }
        if take("-") { return -1 }
        return nil
    }
}
