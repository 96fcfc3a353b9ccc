import Foundation
import Testing
import TestSupport
import Store

@Suite struct RecorderLockTests {
    let folder = TemporaryFolder()

    @Test func oneRecorderPerDatabase() throws {
        let database = folder.file("deep/pingem.db")
        #expect(RecorderLock.holder(databasePath: database) == nil)

        var lock: RecorderLock? = try RecorderLock.acquire(databasePath: database)
        let lockPath = database + ".lock"
        #expect(fileMode(lockPath) == 0o600)
        #expect(String(decoding: fileBytes(lockPath) ?? Data(), as: UTF8.self) == "\(getpid())\n")
        #expect(RecorderLock.holder(databasePath: database) == getpid())

        // flock belongs to the open file description: a second open in this
        // process conflicts like another process would.
        let error = #expect(throws: RecorderLockError.self) { _ = try RecorderLock.acquire(databasePath: database) }
        #expect(error?.reason == .heldBy(pid: getpid()))
        #expect(error?.description ==
                "another pingem record (pid \(getpid())) is already recording into \(database); stop it first or use another --db.")
        // The refused attempt did not disturb the holder.
        #expect(RecorderLock.holder(databasePath: database) == getpid())

        withExtendedLifetime(lock) {}
        lock = nil
        #expect(RecorderLock.holder(databasePath: database) == nil)
        let again = try RecorderLock.acquire(databasePath: database)
        #expect(RecorderLock.holder(databasePath: database) == getpid())
        withExtendedLifetime(again) {}
    }

    @Test func aStalePidInTheFileIsReplaced() throws {
        let database = folder.file("pingem.db")
        #expect(FileManager.default.createFile(atPath: database + ".lock", contents: Data("1234567890\n".utf8)))
        #expect(RecorderLock.holder(databasePath: database) == nil)   // nobody holds it
        let lock = try RecorderLock.acquire(databasePath: database)
        #expect(String(decoding: fileBytes(database + ".lock") ?? Data(), as: UTF8.self) == "\(getpid())\n")
        withExtendedLifetime(lock) {}
    }
}
