// `pingem record --targets-file FILE`: one target a line, each exactly one
// command-line target argument (TargetSpec(parsing:)), so whatever a target
// argument may say, a line may say too. A file with one bad line is refused
// as a whole, naming the line: half a file would start a recorder that
// silently misses targets.

import Foundation

public enum TargetsFile {
    /// Reads and parses the file; throws one sentence naming the file (and
    /// the line) and what to do.
    public static func read(_ path: String) throws -> [TargetSpec] {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isFolder: ObjCBool = false
            if !FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
                throw RecorderError("targets file \(path) does not exist: create it with one target a line, or give the right path to --targets-file.")
            }
            throw RecorderError(isFolder.boolValue
                ? "targets file \(path) is a folder: give the path of a file with one target a line."
                : "cannot read targets file \(path): make it readable by the user pingem runs as.")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RecorderError("targets file \(path) is not UTF-8 text: write one target a line, as on the command line.")
        }
        return try parse(text, path: path)
    }

    /// The targets of the file's text, in order. `#` begins a comment at the
    /// start of a line or after white space; blank lines and white space
    /// around a target are ignored.
    static func parse(_ text: String, path: String) throws -> [TargetSpec] {
        var specs: [TargetSpec] = []
        for (index, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = withoutComment(rawLine).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.contains(where: \.isWhitespace) {
                throw RecorderError("targets file \(path), line \(index + 1): '\(line)' is more than one target; give one target a line.")
            }
            do { specs.append(try TargetSpec(parsing: line)) } catch {
                throw RecorderError("targets file \(path), line \(index + 1): \(error)")
            }
        }
        return specs
    }

    /// The line up to a `#` that starts it or follows white space: a `#`
    /// inside a word is part of it (TargetSpec then says what is wrong).
    private static func withoutComment(_ line: Substring) -> Substring {
        var previous: Character? = nil
        for i in line.indices {
            if line[i] == "#" && (previous == nil || previous!.isWhitespace) { return line[..<i] }
            previous = line[i]
        }
        return line
    }
}
