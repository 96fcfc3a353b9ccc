// Rendering entry point and the number/time formats every format shares.
import Foundation
import Store

public enum ReportFormat: String, Sendable, CaseIterable {
    case table, csv, json
}

/// The report as text. Table times are in `timeZone`; CSV and JSON are UTC.
/// `color: false` never emits escape codes. `path` adds each target's path
/// table to the table (JSON always has "path"; CSV has the `where` columns).
public func render(_ report: Report, as format: ReportFormat, color: Bool, timeZone: TimeZone = .current,
                   path: Bool = false) -> String {
    switch format {
    case .json: return renderJSON(report)
    case .csv: return renderCSV(report)
    case .table: return renderTable(report, color: color, timeZone: timeZone, path: path)
    }
}

/// ISO 8601 UTC with milliseconds: "2026-11-25T21:00:00.000Z".
public func isoUTC(_ ns: Nanoseconds) -> String {
    let ms = floorDivide(ns, 1_000_000)
    let days = floorDivide(ms, 86_400_000)
    let msOfDay = ms - days * 86_400_000
    let date = civilFromDays(days)
    return "\(pad(date.year, 4))-\(pad(date.month, 2))-\(pad(date.day, 2))T"
        + "\(pad(Int(msOfDay / 3_600_000), 2)):\(pad(Int(msOfDay / 60_000 % 60), 2)):"
        + "\(pad(Int(msOfDay / 1000 % 60), 2)).\(pad(Int(msOfDay % 1000), 3))Z"
}

func pad(_ value: Int, _ width: Int) -> String {
    let digits = String(value)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}

/// `value` rounded to exactly `decimals` places, without locale or exponent.
func fixed(_ value: Double, _ decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (value * scale).rounded()
    guard scaled.isFinite, abs(scaled) < 9e18 else { return String(value) }
    let units = Int64(scaled)
    let magnitude = units.magnitude
    let sign = units < 0 ? "-" : ""
    if decimals == 0 { return sign + String(magnitude) }
    let divisor = UInt64(scale)
    let fraction = String(magnitude % divisor)
    return sign + String(magnitude / divisor) + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
}

/// Like `fixed` but without trailing zeros: "300", "0.25".
func trimmed(_ value: Double, _ decimals: Int) -> String {
    let text = fixed(value, decimals)
    // On the UTF-8 bytes, cut once: String's contains(_: String) is
    // Foundation's, and a live page of a month trims 10,000 values a tick.
    let bytes = text.utf8
    guard bytes.contains(UInt8(ascii: ".")) else { return text }
    var end = bytes.endIndex
    while bytes[bytes.index(before: end)] == UInt8(ascii: "0") { end = bytes.index(before: end) }
    if bytes[bytes.index(before: end)] == UInt8(ascii: ".") { end = bytes.index(before: end) }
    return String(text[..<end])
}
