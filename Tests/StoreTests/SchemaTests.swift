import Foundation
import Testing
import TestSupport
@testable import Store

@Suite struct SchemaTests {
    @Test func freshDatabaseHasExactlyTheDocumentedSchema() throws {
        let folder = TemporaryFolder()
        let path = folder.file("pingem.db")
        _ = try Database(path: path, mode: .readWrite)

        let query = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        func normalized(_ rows: [[String?]]) -> [[String?]] {
            rows.map { row in
                row.map { $0?.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
            }
        }
        let reference = RawSQLite(":memory:")
        reference.execute(try schemaSQL())
        let expected = normalized(reference.rows(query))
        let actual = normalized(RawSQLite(path).rows(query))

        #expect(expected.count >= 9)   // 8 tables, 2 indexes, 1 view, autoindex
        #expect(actual.count == expected.count)
        for (made, documented) in zip(actual, expected) {
            #expect(made == documented)
        }
        #expect(RawSQLite(path).value("PRAGMA user_version") == "\(latestSchemaVersion)")
        // Incremental vacuum must be chosen before the first table exists.
        #expect(RawSQLite(path).value("PRAGMA auto_vacuum") == "2")
    }

    @Test func writerUsesWALAndNormalSync() throws {
        let folder = TemporaryFolder()
        let path = folder.file("pingem.db")
        let database = try Database(path: path, mode: .readWrite)
        #expect(RawSQLite(path).value("PRAGMA journal_mode") == "wal")
        // synchronous is per connection: ask the Store's own connection.
        let synchronous = try database.fetchAll("PRAGMA synchronous") { $0.int64(at: 0) }
        #expect(synchronous == [1])  // NORMAL
    }

    @Test func newFilesAndFoldersAreOwnerOnly() throws {
        let folder = TemporaryFolder()
        let path = folder.file("a/b/pingem.db")
        let database = try Database(path: path, mode: .readWrite)
        let target = try database.target(name: "x", host: "127.0.0.1")
        var batch = WriteBatch()
        batch.probes = [ProbeRecord(sentNs: 1, targetID: target.id)]
        let session = try database.beginSession(sampleSession, targets: [])
        try database.write(batch, session: session)

        #expect(fileMode(folder.file("a")) == 0o700)
        #expect(fileMode(folder.file("a/b")) == 0o700)
        #expect(fileMode(path) == 0o600)
        #expect(fileMode(path + "-wal") == 0o600)
    }

    @Test func reopeningMigratesNothingTwice() throws {
        let folder = TemporaryFolder()
        let path = folder.file("pingem.db")
        do {
            let database = try Database(path: path, mode: .readWrite)
            _ = try database.target(name: "kept", host: "h")
        }
        let database = try Database(path: path, mode: .readWrite)
        #expect(try database.targets().map(\.name) == ["kept"])
        #expect(try database.userVersion() == Int64(latestSchemaVersion))
    }

    /// Issue 4: an empty file is refused, not taken over (nothing pingem
    /// creates stays empty; see Database.prepareFile).
    @Test func emptyExistingFileIsRefusedForWriting() throws {
        let folder = TemporaryFolder()
        let path = folder.file("empty.db")
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect(throws: OpenError(path: path, reason: .emptyFile)) { try Database(path: path, mode: .readWrite) }
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 0)
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
    }

    @Test func defaultPathFollowsEnvironment() {
        #expect(Database.defaultPath(environment: ["PINGEM_DB": "/x/y.db", "XDG_DATA_HOME": "/d", "HOME": "/h"]) == "/x/y.db")
        #expect(Database.defaultPath(environment: ["XDG_DATA_HOME": "/d", "HOME": "/h"]) == "/d/pingem/pingem.db")
        #expect(Database.defaultPath(environment: ["HOME": "/h"]) == "/h/.local/share/pingem/pingem.db")
        #expect(Database.defaultPath(environment: ["PINGEM_DB": "", "XDG_DATA_HOME": "", "HOME": "/h"]) == "/h/.local/share/pingem/pingem.db")
    }
}
