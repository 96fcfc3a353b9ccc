// A pingem database file: opening (with its refusals), migrations, and the
// plumbing every query uses. The recorder's writes are in Database+Recorder,
// the readers in Database+Reader.
//
// Invariants:
//   * A refused file is never written: every check that can refuse runs
//     before the first write (journal_mode=WAL is the first one).
//   * Database is deliberately not Sendable: one owner uses it, and only the
//     recorder writes (its RecorderLock makes sure of that across processes).

internal import CSQLite
#if canImport(Glibc)
import Glibc
#endif

public final class Database {
    public enum Mode: Sendable { case readOnly, readWrite }

    public let path: String
    public let mode: Mode
    let sqliteConnection: OpaquePointer
    /// Prepared once, by SQL text; all finalized before the connection closes.
    private var statements: [String: Statement] = [:]
    /// Tests only: runs between compaction's steps (Database+Compaction), to
    /// write rows into the hour or read it right there.
    var compactionPhase: ((CompactionPhase) throws -> Void)? = nil
    /// About how many probe rows one transaction of compaction deletes: a
    /// tenth of a second or so on a small machine (smaller in tests).
    var rowsPerCompactionChunk = 200_000
    /// Runs before every write transaction this connection begins; what it
    /// throws ends the work in hand before that transaction. The recorder's
    /// upkeep waits there for its writer (WriteTurn) and stops there.
    public var beforeWriteTransaction: (() throws -> Void)? = nil

    /// How long a statement waits for another process's lock before it fails
    /// with SQLITE_BUSY (a checkpoint, or a second writer).
    static let busyTimeoutMilliseconds: Int32 = 5_000

    /// Opens (readWrite: creates and migrates) the database at `path`.
    /// Throws OpenError when the file is refused, StoreError when SQLite fails.
    /// - Parameter permissions: mode of a file this call creates (SQLite gives
    ///   the -wal and -shm files the same); folders it creates get the same
    ///   bits plus search (x) wherever read is allowed. The process umask
    ///   still applies. Default: the owner only.
    public init(path: String, mode: Mode, permissions: mode_t = 0o600) throws {
        self.path = path
        self.mode = mode
        try Database.prepareFile(path: path, mode: mode, permissions: permissions)
        self.sqliteConnection = try Database.openConnection(path: path, mode: mode)
        // From here on a throw runs deinit, which closes the connection.
        try checkAndConfigure()
    }

    deinit {
        for statement in statements.values { statement.finalize() }
        statements.removeAll()
        sqlite3_close_v2(sqliteConnection)
    }

    /// Where the database lives unless --db says otherwise: $PINGEM_DB, else
    /// $XDG_DATA_HOME/pingem/pingem.db, else ~/.local/share/pingem/pingem.db.
    public static func defaultPath(environment: [String: String]) -> String {
        if let path = environment["PINGEM_DB"], !path.isEmpty { return path }
        // The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
        if let data = environment["XDG_DATA_HOME"], data.hasPrefix("/") {
            return data + "/pingem/pingem.db"
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "."
        return home + "/.local/share/pingem/pingem.db"
    }

    // MARK: Opening

    /// Refuses folders, (read-only) missing files and (read-write) empty
    /// files; creates a missing file,
    /// and its folders, readable by the owner only.
    private static func prepareFile(path: String, mode: Mode, permissions: mode_t) throws {
        let status: stat?
        do { status = try System.fileStatus(path) } catch {
            throw OpenError(path: path, reason: .notAccessible(message: error.reason))
        }
        if let info = status {
            if (info.st_mode & S_IFMT) == S_IFDIR { throw OpenError(path: path, reason: .isFolder) }
            // SQLite would take a zero-byte file as a new database and write
            // into it. A file pingem created is never left empty for long (the
            // WAL switch writes its header first, and until a checkpoint the
            // data sits in the -wal file), so an empty one is somebody else's.
            let walHasData = ((try? System.fileStatus(path + "-wal"))??.st_size ?? 0) > 0
            if mode == .readWrite && info.st_size == 0 && !walHasData {
                throw OpenError(path: path, reason: .emptyFile)
            }
            return
        }
        guard mode == .readWrite else { throw OpenError(path: path, reason: .missing) }
        try createFolders(containing: path, permissions: permissions)
        // SQLite would create the file 0644; creating it first makes it 0600
        // (or what the caller asks), and SQLite gives the -wal and -shm files
        // the main file's permissions.
        do {
            let fd = try System.open(path, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions: permissions)
            try? System.close(fd)
        } catch where error.errno == EEXIST {
            // Created meanwhile (by another pingem): SQLite opens it as it is.
        } catch {
            throw OpenError(path: path, reason: .cannotCreate(path: path, message: error.reason))
        }
    }

    /// mkdir -p of the file's folder; folders we create are 0700 (for file
    /// permissions 0600), existing ones are left as they are.
    static func createFolders(containing path: String, permissions: mode_t = 0o600) throws {
        // A folder needs search (x) wherever its files may be read.
        let folderMode = (permissions & 0o777) | ((permissions & 0o444) >> 2)
        guard let slash = path.lastIndex(of: "/") else { return }
        let folder = String(path[..<slash])
        var prefix = folder.hasPrefix("/") ? "" : "."
        for component in folder.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            do { try System.makeFolder(prefix, permissions: folderMode) } catch {
                throw OpenError(path: path, reason: .cannotCreate(path: prefix, message: error.reason))
            }
        }
    }

    private static func openConnection(path: String, mode: Mode) throws -> OpaquePointer {
        // No SQLITE_OPEN_CREATE: prepareFile made the file, and a read-only open must never create one.
        let access = mode == .readWrite ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY
        var connection: OpaquePointer?
        let code = sqlite3_open_v2(path, &connection, access | SQLITE_OPEN_NOMUTEX, nil)
        guard code == SQLITE_OK, let connection else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            // A failed open may still allocate a handle, which must be closed.
            sqlite3_close_v2(connection)
            throw OpenError(path: path, reason: .notAccessible(message: message))
        }
        sqlite3_extended_result_codes(connection, 1)
        sqlite3_busy_timeout(connection, busyTimeoutMilliseconds)
        // Refuse SQL that could corrupt the file (writable_schema and the like).
        _ = pingem_sqlite3_db_config_defensive(connection, 1)
        return connection
    }

    /// Reads before it writes: refuses what is not ours, then (readWrite)
    /// switches to WAL and migrates.
    private func checkAndConfigure() throws {
        if mode == .readWrite && sqlite3_db_readonly(sqliteConnection, "main") == 1 {
            throw OpenError(path: path, reason: .notAccessible(message: "the file is read-only"))
        }
        let version: Int
        let objectCount: Int64
        do {
            version = try Int(userVersion())
            objectCount = try withStatement("SELECT count(*) FROM sqlite_master") { statement in
                _ = try statement.step()
                return statement.int64(at: 0)
            }
        } catch let error as StoreError {
            throw refusal(for: error)
        }
        if version > latestSchemaVersion {
            throw OpenError(path: path, reason: .newerSchema(found: version, known: latestSchemaVersion))
        }
        if version == 0 && objectCount > 0 { throw OpenError(path: path, reason: .otherProgram) }
        if mode == .readOnly {
            if version == 0 { throw OpenError(path: path, reason: .empty) }
            // Readers scan millions of rows: mapped pages save a read() copy
            // of every page (a tenth of a day's report went to copying pages).
            try execute("PRAGMA mmap_size=1073741824")
            return
        }

        // A new file: freed pages (pingem prune) can then be given back in
        // small steps (PRAGMA incremental_vacuum) that never hold the write
        // lock for long. It only takes effect before the first table exists
        // (and before the WAL switch writes the header);
        // older files keep auto_vacuum=NONE until a prune converts them once.
        if version == 0 { try execute("PRAGMA auto_vacuum=INCREMENTAL") }

        // WAL: readers in other processes (pingem report, status) never block
        // the recorder, and it never blocks them. The pragma answers the mode
        // it got, which is not WAL on file systems without shared memory.
        let journalMode = try withStatement("PRAGMA journal_mode=WAL") { statement in
            _ = try statement.step()
            return statement.string(at: 0)
        }
        guard journalMode.lowercased() == "wal" else {
            throw StoreError(resultCode: .error, message: "journal_mode is \(journalMode), not wal", sql: "PRAGMA journal_mode=WAL")
        }
        // In WAL mode NORMAL loses at most the last commits on power loss, never consistency.
        try execute("PRAGMA synchronous=NORMAL")
        try migrate()
    }

    /// Caps SQLite's page cache of the main file for this connection at
    /// `kibibytes` (default 2 MiB). The recorder's writer appends, and its
    /// compaction scans each page once, so it loses nothing with a small
    /// cache and stays small itself. (Temporary tables keep their 2 MiB:
    /// compaction's copy of an hour inserts at one page per target, and
    /// with less than those pages cached it wrote its pages out again and
    /// again: 11 s of system time per hour at 100 targets.)
    public func limitPageCache(kibibytes: Int) throws {
        // PRAGMA takes no bound parameter; the value is our own integer.
        try execute("PRAGMA main.cache_size=-\(kibibytes)")
    }

    /// Leaves checkpoints (copying the write-ahead log into the database) to
    /// another connection, here up to a WAL of `safetyPages` pages: a commit
    /// that crosses SQLite's default 1,000 pages copies everything the other
    /// connections wrote too. The recorder's writer would then copy the
    /// upkeep's blocks and deletes (100 MB an hour at 1,000 probes/s) in its
    /// own commits; its upkeep checkpoints after each step instead.
    public func leaveCheckpointsToOthers(safetyPages: Int) throws {
        try execute("PRAGMA wal_autocheckpoint=\(max(1, safetyPages))")
    }

    /// After a checkpoint, cuts the write-ahead log back to `bytes`: one big
    /// transaction (compacting an hour at 1,000 probes/s writes about
    /// 100 MB of WAL) would otherwise leave the file that large for good.
    public func limitWALSize(bytes: Int) throws {
        try execute("PRAGMA journal_size_limit=\(bytes)")
    }

    /// Maps what SQLite says about a file we could not read to a refusal.
    private func refusal(for error: StoreError) -> Error {
        switch error.resultCode.primary {
        case .notADatabase: return OpenError(path: path, reason: .notADatabase)
        case .corrupt: return OpenError(path: path, reason: .damaged(message: error.message))
        case .cantOpen, ResultCode(rawValue: SQLITE_PERM), ResultCode(rawValue: SQLITE_IOERR),
             ResultCode(rawValue: SQLITE_AUTH):
            return OpenError(path: path, reason: .notAccessible(message: error.message))
        default: return error
        }
    }

    func userVersion() throws -> Int64 {
        try withStatement("PRAGMA user_version") { statement in
            _ = try statement.step()
            return statement.int64(at: 0)
        }
    }

    /// Runs each migration above the file's version, each with its version
    /// bump in one transaction.
    private func migrate() throws {
        for migration in migrations {
            try inTransaction {
                // Read inside the transaction: the version cannot change under us.
                guard try userVersion() < migration.version else { return }
                try execute(migration.sql)
                // PRAGMA cannot take a bound parameter; the value is our own integer.
                try execute("PRAGMA user_version = \(migration.version)")
            }
        }
    }

    // MARK: Plumbing

    /// Runs SQL text, possibly several statements, without caching.
    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(sqliteConnection, sql, nil, nil, &message)
        if code != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_free(message)
            throw StoreError(resultCode: ResultCode(rawValue: code), message: text, sql: sql)
        }
    }

    /// Gives `body` the statement for `sql`, prepared once and cached, reset
    /// with its bindings cleared; resets it afterwards so no read transaction
    /// (WAL snapshot) outlives the call. A nested use of the same SQL gets a
    /// statement of its own.
    func withStatement<T>(_ sql: String, _ body: (Statement) throws -> T) throws -> T {
        let statement: Statement
        var isTemporary = false
        if let cached = statements[sql] {
            if cached.isInUse {
                statement = try Statement(connection: sqliteConnection, sql: sql)
                isTemporary = true
            } else {
                statement = cached
            }
        } else {
            statement = try Statement(connection: sqliteConnection, sql: sql)
            statements[sql] = statement
        }
        statement.reset()
        statement.isInUse = true
        defer {
            statement.reset()
            statement.isInUse = false
            if isTemporary { statement.finalize() }
        }
        return try body(statement)
    }

    /// Runs a statement that returns no rows, with `bind` setting its parameters.
    func run(_ sql: String, bind: (Statement) -> Void = { _ in }) throws {
        try withStatement(sql) { statement in
            bind(statement)
            try statement.run()
        }
    }

    /// All rows of a query, each made by `row`.
    func fetchAll<T>(_ sql: String, bind: (Statement) -> Void = { _ in }, row: (Statement) throws -> T) throws -> [T] {
        try withStatement(sql) { statement in
            bind(statement)
            var rows: [T] = []
            while try statement.step() { rows.append(try row(statement)) }
            return rows
        }
    }

    /// Runs `body` in a BEGIN IMMEDIATE transaction (the write lock is taken
    /// at once, so a busy database fails here, not halfway). On error, rolls
    /// back if SQLite has not already done so, and rethrows the first error.
    func inTransaction<T>(_ body: () throws -> T) throws -> T {
        try beforeWriteTransaction?()
        try run("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try run("COMMIT")
            return result
        } catch {
            // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) roll back by themselves.
            if sqlite3_get_autocommit(sqliteConnection) == 0 {
                // The first error is the one worth reporting; a failed rollback
                // leaves nothing more to do.
                _ = sqlite3_exec(sqliteConnection, "ROLLBACK", nil, nil, nil)
            }
            throw error
        }
    }
}
