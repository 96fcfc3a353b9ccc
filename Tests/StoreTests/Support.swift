// Test helpers: raw SQLite access that does not go through Store (to build
// foreign files and to check what Store wrote). Temporary folders and the
// seeded generator come from TestSupport.

import CSQLite
import Foundation
import Store
import TestSupport

/// A plain SQLite connection, independent of Store's code.
final class RawSQLite {
    let connection: OpaquePointer

    init(_ path: String, readOnly: Bool = false) {
        var connection: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        let code = sqlite3_open_v2(path, &connection, flags, nil)
        precondition(code == SQLITE_OK, "open \(path): \(code)")
        self.connection = connection!
    }

    deinit { sqlite3_close_v2(connection) }

    func execute(_ sql: String) {
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(connection, sql, nil, nil, &message)
        precondition(code == SQLITE_OK, "\(sql): \(message.map { String(cString: $0) } ?? "")")
    }

    /// Every row, each column as text (nil for NULL).
    func rows(_ sql: String) -> [[String?]] {
        var statement: OpaquePointer?
        precondition(sqlite3_prepare_v2(connection, sql, -1, &statement, nil) == SQLITE_OK, sql)
        defer { sqlite3_finalize(statement) }
        var rows: [[String?]] = []
        while sqlite3_step(statement) == SQLITE_ROW {
            rows.append((0..<sqlite3_column_count(statement)).map { column in
                sqlite3_column_text(statement, column).map { String(cString: $0) }
            })
        }
        return rows
    }

    func value(_ sql: String) -> String? { rows(sql).first?.first ?? nil }
}

func fileBytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

func fileMode(_ path: String) -> mode_t {
    var info = stat()
    precondition(stat(path, &info) == 0, "stat \(path)")
    return info.st_mode & 0o777
}

func fileExists(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0
}

/// schema.sql at the package root, the documented schema.
func schemaSQL() throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return try String(contentsOf: root.appendingPathComponent("schema.sql"), encoding: .utf8)
}

let sampleSession = NewSession(
    runID: 0xFEED_FACE_CAFE_BEEF, pid: 4242, hostname: "probe-host", version: "0.1.0",
    socketKind: "datagram", intervalNs: 1_000_000_000, payloadBytes: 56, startedNs: 1_700_000_000_000_000_000)

/// Random damage to an encoded block and random bytes, for a codec's
/// decoder: any outcome but a crash or a hang (some damage still decodes).
func decodeDamaged(_ bytes: [UInt8], seed: UInt64, flipped: Int, random: Int, randomPrefix: [UInt8] = [],
                   _ decode: ([UInt8]) throws -> Void) {
    var generator = SplitMix64(seed: seed)
    for _ in 0..<flipped {
        var damaged = bytes
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            damaged[Int.random(in: 0..<damaged.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
        }
        _ = try? decode(damaged)
    }
    for _ in 0..<random {
        _ = try? decode(randomPrefix + (0..<Int.random(in: 0..<64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
