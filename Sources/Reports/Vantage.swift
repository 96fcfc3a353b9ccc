// Several databases side by side (`pingem report --db home.db --db office.db`):
// each database is one vantage point, reported on its own with the same
// options, and its targets keep the vantage's name. The same target name in
// two databases is two rows: each measured a different path.
//
// A single database is no vantage at all (`vantage` nil), so its output is
// exactly what it always was.
import Store

/// One `--db` argument: `PATH`, or `NAME=PATH` to name the vantage.
public struct VantageDatabase: Sendable, Equatable {
    public var name: String
    public var path: String
    public init(name: String, path: String) { self.name = name; self.path = path }
}

/// Reads the `--db` arguments. An argument that names an existing file is a
/// path, whatever it contains; otherwise `NAME=PATH` (split at the first
/// "=", NAME without "/") names the vantage. A vantage without a name is
/// called by its file's base name without the extension (`home.db` is
/// `home`). Two vantages with one name are refused: say which is which.
public func parseVantages(_ arguments: [String], fileExists: (String) -> Bool) throws -> [VantageDatabase] {
    var vantages: [VantageDatabase] = []
    for argument in arguments {
        if !fileExists(argument), let equals = argument.firstIndex(of: "="),
           !argument[..<equals].contains("/") {
            let name = String(argument[..<equals]), path = String(argument[argument.index(after: equals)...])
            guard !name.isEmpty, !path.isEmpty else {
                throw ReportError("--db \(argument): write NAME=PATH (e.g. home=home.db) or just the path.")
            }
            vantages.append(VantageDatabase(name: name, path: path))
        } else {
            vantages.append(VantageDatabase(name: vantageName(ofPath: argument), path: argument))
        }
    }
    var seen: [String: String] = [:]
    for v in vantages {
        if let other = seen[v.name] {
            throw ReportError("Two databases are both called \"\(v.name)\" (\(other), \(v.path)): name them with --db NAME=PATH, e.g. --db \(v.name)-2=\(v.path).")
        }
        seen[v.name] = v.path
    }
    return vantages
}

/// "home" for "/backups/home.db", "pingem" for "pingem.db", "data" for "data".
public func vantageName(ofPath path: String) -> String {
    var base = Substring(path)
    while base.hasSuffix("/") && base.count > 1 { base.removeLast() }
    if let slash = base.lastIndex(of: "/") { base = base[base.index(after: slash)...] }
    if let dot = base.lastIndex(of: "."), dot != base.startIndex { base = base[..<dot] }
    return base.isEmpty ? path : String(base)
}

/// The reports of several vantages as one: the window of the first (all
/// were made with the same options), every target tagged with its vantage,
/// vantages in the order given.
public func sideBySide(_ reports: [(vantage: String, report: Report)]) -> Report {
    guard var merged = reports.first?.report else {
        preconditionFailure("sideBySide needs at least one report")
    }
    // Percentiles are approximate when any database's came from summaries.
    merged.percentilesApproximate = reports.contains { $0.report.percentilesApproximate }
    merged.targets = reports.flatMap { entry in
        entry.report.targets.map { target in
            var tagged = target
            tagged.vantage = entry.vantage
            return tagged
        }
    }
    return merged
}

/// The report of several databases, one vantage each, side by side. Each is
/// reported with `options`; `--target` names a target of any of them (a
/// vantage that did not record it adds no row), and a name none recorded is
/// refused like an unknown target of one database. `summaries` false reads
/// every probe (--exact).
public func makeVantageReport(_ databases: [(vantage: String, db: Database)], _ options: ReportOptions,
                              summaries: Bool = true) throws -> Report {
    var reports: [(vantage: String, report: Report)] = []
    var known: [String] = []
    var found = Set<String>()
    for (vantage, db) in databases {
        do {
            var o = options
            if !options.targets.isEmpty {
                let recorded = try db.targets()
                known.append("\(vantage): " + (recorded.isEmpty ? "none" : recorded.map(\.name).joined(separator: ", ")))
                o.targets = options.targets.filter { name in recorded.contains { $0.name == name || $0.host == name } }
                found.formUnion(o.targets)
                if o.targets.isEmpty { continue }
            }
            var input = try ReportInput.load(from: db, options: o, summaries: summaries)
            try input.loadPathProbes(from: db, options: o)
            reports.append((vantage, try makeReport(input, o)))
        } catch let error as ReportError {
            throw error
        } catch {
            throw VantageError(vantage: vantage, error: error)
        }
    }
    if let missing = options.targets.first(where: { !found.contains($0) }) {
        throw ReportError("Unknown target \"\(missing)\": no database recorded it (\(known.joined(separator: "; "))).")
    }
    if reports.isEmpty {
        // Only possible without databases; the CLI always gives one.
        throw ReportError("No database to report: give one or more with --db.")
    }
    return sideBySide(reports)
}

/// A database of several that could not be opened or read: which vantage,
/// then the database's own one sentence (which names its path).
public struct VantageError: Error, CustomStringConvertible {
    public var vantage: String
    public var error: any Error
    public init(vantage: String, error: any Error) { self.vantage = vantage; self.error = error }
    public var description: String { "vantage \(vantage): \(error)" }
}
