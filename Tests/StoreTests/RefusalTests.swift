import Foundation
import Testing
import TestSupport
@testable import Store

/// Files that are not ours, or not for this version, are refused with one
/// sentence naming the path, and are never written.
@Suite struct RefusalTests {
    let folder = TemporaryFolder()

    /// Opens in both modes, expects the same refusal each time and the file's bytes unchanged.
    func expectRefused(_ path: String, modes: [Database.Mode] = [.readWrite, .readOnly],
                       sourceLocation: SourceLocation = #_sourceLocation,
                       _ check: (OpenError.Reason) -> Bool) {
        let before = fileBytes(path)
        for mode in modes {
            let error = #expect(throws: OpenError.self, sourceLocation: sourceLocation) {
                _ = try Database(path: path, mode: mode)
            }
            guard let error else { continue }
            #expect(check(error.reason), "\(mode): \(error.reason)", sourceLocation: sourceLocation)
            let text = error.description
            #expect(text.contains(path), sourceLocation: sourceLocation)
            #expect(!text.contains("\n") && text.hasSuffix("."), sourceLocation: sourceLocation)
            #expect(fileBytes(path) == before, "\(mode) changed the file", sourceLocation: sourceLocation)
        }
    }

    /// A real pingem database with some rows, closed.
    func makeDatabase(_ path: String, probes: Int = 10) throws {
        let database = try Database(path: path, mode: .readWrite)
        let a = try database.target(name: "a", host: "a").id
        let session = try database.beginSession(sampleSession, targets: [])
        var batch = WriteBatch()
        batch.probes = (0..<probes).map { ProbeRecord(sentNs: Int64($0), targetID: a, rttNs: 20_000_000) }
        try database.write(batch, session: session)
    }

    @Test func newerSchemaVersion() throws {
        let path = folder.file("new.db")
        try makeDatabase(path)
        let newer = latestSchemaVersion + 1
        RawSQLite(path).execute("PRAGMA user_version = \(newer)")
        expectRefused(path) { $0 == .newerSchema(found: newer, known: latestSchemaVersion) }
        let error = #expect(throws: OpenError.self) { _ = try Database(path: path, mode: .readOnly) }
        #expect(error?.description == "\(path) was written by a newer pingem (schema version \(newer), this one knows up to \(latestSchemaVersion)): upgrade pingem.")
    }

    @Test func randomBytes() throws {
        let path = folder.file("random.db")
        var generator = SystemRandomNumberGenerator()
        let bytes = Data((0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) })
        #expect(FileManager.default.createFile(atPath: path, contents: bytes))
        expectRefused(path) { $0 == .notADatabase }
    }

    @Test func textFile() throws {
        let path = folder.file("notes.txt")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(String(repeating: "hello pingem\n", count: 100).utf8)))
        expectRefused(path) { $0 == .notADatabase }
    }

    @Test(arguments: [50, 1000, 4096, 8192, -1])
    func truncatedFile(keep: Int) throws {
        let path = folder.file("whole.db")
        try makeDatabase(path, probes: 20_000)
        let whole = try #require(fileBytes(path))
        let cut = folder.file("cut.db")
        let count = keep < 0 ? whole.count / 2 : keep
        #expect(FileManager.default.createFile(atPath: cut, contents: whole.prefix(count)))
        expectRefused(cut) {
            if case .damaged = $0 { return true }
            return $0 == .notADatabase
        }
    }

    @Test func otherProgramsDatabase() throws {
        let path = folder.file("other.db")
        RawSQLite(path).execute("CREATE TABLE recipe (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO recipe(name) VALUES ('soup')")
        expectRefused(path) { $0 == .otherProgram }
    }

    @Test func folderPath() throws {
        expectRefused(folder.path) { $0 == .isFolder }
    }

    @Test func missingFileReadOnlyCreatesNothing() throws {
        let path = folder.file("sub/missing.db")
        let error = #expect(throws: OpenError.self) { _ = try Database(path: path, mode: .readOnly) }
        #expect(error?.reason == .missing)
        #expect(error?.description.contains(path) == true)
        #expect(!fileExists(path))
        #expect(!fileExists(folder.file("sub")))
    }

    @Test func emptyFileReadOnlyIsNoData() throws {
        let path = folder.file("empty.db")
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        expectRefused(path, modes: [.readOnly]) { $0 == .empty }
        #expect(fileBytes(path)?.count == 0)
    }
}
