// The thin layer over the SQLite C API: result codes, errors, and prepared
// statements. Everything else in Store goes through these types.
//
// Invariant: a Statement is owned by exactly one Database, which finalizes
// every statement it prepared before it closes the connection; a statement
// left mid-iteration would pin a WAL snapshot (and keep checkpoints from
// finishing), so every reader resets its statement when it is done.

internal import CSQLite

/// SQLite's "copy the bytes now" destructor. The C macro is a cast of -1 to a
/// function pointer, which Swift cannot import, so it is rebuilt here (as GRDB
/// does).
let SQLITE_TRANSIENT = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

/// An SQLite result code, primary or extended. A struct, not an enum: SQLite
/// has codes we never listed and adds new ones.
public struct ResultCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The primary code of an extended one (SQLITE_IOERR_READ -> SQLITE_IOERR).
    public var primary: ResultCode { ResultCode(rawValue: rawValue & 0xFF) }

    public static let error = ResultCode(rawValue: SQLITE_ERROR)
    public static let busy = ResultCode(rawValue: SQLITE_BUSY)
    public static let readOnly = ResultCode(rawValue: SQLITE_READONLY)
    public static let corrupt = ResultCode(rawValue: SQLITE_CORRUPT)
    public static let notFound = ResultCode(rawValue: SQLITE_NOTFOUND)
    public static let cantOpen = ResultCode(rawValue: SQLITE_CANTOPEN)
    public static let constraint = ResultCode(rawValue: SQLITE_CONSTRAINT)
    public static let misuse = ResultCode(rawValue: SQLITE_MISUSE)
    public static let notADatabase = ResultCode(rawValue: SQLITE_NOTADB)

    public var description: String {
        "\(rawValue) (\(String(cString: sqlite3_errstr(rawValue))))"
    }
}

/// A failed SQLite call: its result code, SQLite's message and the SQL that
/// was running (GRDB's DatabaseError, reduced).
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var resultCode: ResultCode
    /// The sqlite3_errmsg text at the time of the failure.
    public var message: String
    /// The statement that failed, if any.
    public var sql: String?

    public init(resultCode: ResultCode, message: String, sql: String? = nil) {
        self.resultCode = resultCode; self.message = message; self.sql = sql
    }

    /// Reads the message of the connection's latest failure.
    init(code: Int32, connection: OpaquePointer?, sql: String?) {
        let message = connection.map { String(cString: sqlite3_errmsg($0)) }
            ?? String(cString: sqlite3_errstr(code))
        self.init(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
    }

    public var description: String {
        var text = "SQLite error \(resultCode.rawValue): \(message)"
        if let sql { text += " (while running: \(sql))" }
        return text
    }
}

/// A prepared statement. Not Sendable: it belongs to its Database's thread.
final class Statement {
    let sqliteStatement: OpaquePointer
    let sql: String
    /// True between `prepareForUse` and `reset`: a reader that is iterating.
    /// A nested use of the same SQL gets its own statement instead.
    var isInUse = false

    init(connection: OpaquePointer, sql: String) throws {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(connection, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else {
            throw StoreError(code: code, connection: connection, sql: sql)
        }
        self.sqliteStatement = statement
        self.sql = sql
    }

    func finalize() {
        sqlite3_finalize(sqliteStatement)
    }

    /// Ends any previous run and forgets old bindings, so no value from an
    /// earlier call can leak into this one.
    @inline(__always)
    func reset() {
        // The code returned repeats the last step's error, already thrown.
        sqlite3_reset(sqliteStatement)
        sqlite3_clear_bindings(sqliteStatement)
        isInUse = false
    }

    // Binding. A failed bind means the SQL and the code disagree (wrong index,
    // statement not reset): a bug, not a condition to handle.

    @inline(__always)
    func bind(_ value: Int64, at index: Int32) {
        let code = sqlite3_bind_int64(sqliteStatement, index, value)
        precondition(code == SQLITE_OK, "bind \(index) of \(sql): \(code)")
    }

    @inline(__always)
    func bind(_ value: Int64?, at index: Int32) {
        // clear_bindings already left the parameter NULL.
        if let value { bind(value, at: index) }
    }

    func bind(_ value: String, at index: Int32) {
        let code = sqlite3_bind_text(sqliteStatement, index, value, -1, SQLITE_TRANSIENT)
        precondition(code == SQLITE_OK, "bind \(index) of \(sql): \(code)")
    }

    func bind(_ value: String?, at index: Int32) {
        // clear_bindings already left the parameter NULL.
        if let value { bind(value, at: index) }
    }

    func bind(_ bytes: [UInt8], at index: Int32) {
        let code = bytes.withUnsafeBytes { buffer in
            sqlite3_bind_blob(sqliteStatement, index, buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(buffer.count), SQLITE_TRANSIENT)
        }
        precondition(code == SQLITE_OK, "bind \(index) of \(sql): \(code)")
    }

    /// Runs one step: true when a row is ready, false when done.
    @inline(__always)
    func step() throws -> Bool {
        switch sqlite3_step(sqliteStatement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            throw StoreError(code: code, connection: sqlite3_db_handle(sqliteStatement), sql: sql)
        }
    }

    /// Runs a statement that returns no rows.
    @inline(__always)
    func run() throws {
        while try step() {}
    }

    // Columns, 0-based.

    @inline(__always)
    func int64(at column: Int32) -> Int64 {
        sqlite3_column_int64(sqliteStatement, column)
    }

    @inline(__always)
    func optionalInt64(at column: Int32) -> Int64? {
        sqlite3_column_type(sqliteStatement, column) == SQLITE_NULL ? nil : sqlite3_column_int64(sqliteStatement, column)
    }

    func blob(at column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(sqliteStatement, column))
        guard count > 0, let base = sqlite3_column_blob(sqliteStatement, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: count))
    }

    func string(at column: Int32) -> String {
        guard let text = sqlite3_column_text(sqliteStatement, column) else { return "" }
        return String(cString: text)
    }

    func optionalString(at column: Int32) -> String? {
        sqlite3_column_type(sqliteStatement, column) == SQLITE_NULL ? nil : string(at: column)
    }
}
