// `pingem record --targets-file` refuses a file before it opens anything: a
// usage error (exit 64, as every bad argument of record; the file is an
// argument, read while the command line is validated) in one sentence that
// names the file, and the line when one is wrong. No database is created.
import Foundation
import Testing
import TestSupport

@Suite struct TargetsFileCLITests {
    func refused(_ arguments: [String], in dir: TemporaryFolder) throws -> String {
        let result = try run(pingemBinary, ["record"] + arguments + ["--db", dir.file("x.db")])
        #expect(result.status == 64, "\(arguments): \(result.status) \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("x.db")))
        return result.stderr
    }

    @Test func aMissingFileIsRefusedNamingIt() throws {
        let dir = TemporaryFolder()
        let path = dir.file("nosuch")
        let stderr = try refused(["--targets-file", path], in: dir)
        // ArgumentParser's usage lines follow, as for every refused argument.
        #expect(stderr.split(separator: "\n").first == "Error: targets file \(path) does not exist: create it with one target a line, or give the right path to --targets-file.", "\(stderr)")
    }

    @Test func aFolderOrAnUnreadableFileIsRefused() throws {
        let dir = TemporaryFolder()
        #expect(try refused(["--targets-file", dir.path], in: dir).contains("targets file \(dir.path) is a folder"))
        let locked = dir.file("locked")
        try Data("a=127.0.0.1\n".utf8).write(to: URL(fileURLWithPath: locked))
        chmod(locked, 0)
        // Root reads a file of mode 0 anyway: refused only for other users.
        if geteuid() != 0 {
            #expect(try refused(["--targets-file", locked], in: dir).contains("cannot read targets file \(locked)"))
        }
    }

    @Test func aBadLineRefusesTheWholeFileNamingTheLine() throws {
        let dir = TemporaryFolder()
        let path = dir.file("targets")
        try Data("# lab\nok=127.0.0.1\n\nbad=a b\n".utf8).write(to: URL(fileURLWithPath: path))
        let stderr = try refused(["--targets-file", path], in: dir)
        #expect(stderr.contains("targets file \(path), line 4: 'bad=a b' is more than one target; give one target a line."), "\(stderr)")
        try Data("ok=127.0.0.1\n=127.0.0.2\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try refused(["--targets-file", path], in: dir).contains("targets file \(path), line 2: '=127.0.0.2' is not a target"))
    }

    @Test func aFileWithNoTargetAndNoArgumentIsTheUsualNoTarget() throws {
        let dir = TemporaryFolder()
        let path = dir.file("targets")
        try Data("# nothing yet\n\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try refused(["--targets-file", path], in: dir).contains("no target given: name at least one host"))
    }

    @Test func aNameTwiceAcrossTheFileAndTheCommandLineIsRefused() throws {
        let dir = TemporaryFolder()
        let path = dir.file("targets")
        try Data("router=127.0.0.2\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try refused(["router=127.0.0.1", "--targets-file", path], in: dir).contains("a target is named twice"))
        try Data("router=127.0.0.2\nrouter=127.0.0.3\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try refused(["--targets-file", path], in: dir).contains("a target is named twice"))
    }
}
