// The targets file (--targets-file) and what a reload does to the engine:
// its parser line by line, the offsets of added targets, and the schedule of
// kept, removed, added and re-added targets on a manual clock.
import Foundation
import Testing
@testable import Recorder
import Store

@Suite struct TargetsFileParserTests {
    @Test func commentsBlankLinesAndWhiteSpaceAreIgnored() throws {
        let text = """
            # home
            router=192.0.2.1
              \t
            example.com   # the web
            \tdns=198.51.100.53\t
            #commented=192.0.2.9
            odd#name=192.0.2.7
            """
        let specs = try TargetsFile.parse(text, path: "t")
        #expect(specs.map(\.name) == ["router", "example.com", "dns", "odd#name"])
        #expect(specs.map(\.host) == ["192.0.2.1", "example.com", "198.51.100.53", "192.0.2.7"])
    }

    @Test func crlfLinesAndAnEmptyFileParse() throws {
        #expect(try TargetsFile.parse("a=192.0.2.1\r\nb=192.0.2.2\r\n", path: "t").map(\.name) == ["a", "b"])
        #expect(try TargetsFile.parse("", path: "t").isEmpty)
        #expect(try TargetsFile.parse("# nothing yet\n\n", path: "t").isEmpty)
    }

    @Test func aBadLineIsNamedByItsNumber() {
        let cases: [(String, String)] = [
            ("a=192.0.2.1\n\n# x\n=192.0.2.2\n", "targets file t, line 4: '=192.0.2.2' is not a target"),
            ("a=192.0.2.1\nb c\n", "targets file t, line 2: 'b c' is more than one target; give one target a line."),
            ("# one\nx=a/b\n", "targets file t, line 2: 'a/b' is not a host name or address"),
            ("r=fe80::1%pingem-nosuch0\n", "targets file t, line 1: 'fe80::1%pingem-nosuch0': this machine has no network interface named 'pingem-nosuch0'"),
        ]
        for (text, message) in cases {
            #expect(throws: (any Error).self) { try TargetsFile.parse(text, path: "t") }
            do { _ = try TargetsFile.parse(text, path: "t") } catch {
                #expect("\(error)".hasPrefix(message), "\(error)")
            }
        }
    }

    @Test func theShippedExampleParses() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("contrib/targets.example")
        #expect(try TargetsFile.read(example.path).map(\.name) == ["router", "dns", "quad9", "example.com"])
    }

    @Test func aMissingFileOrAFolderIsOneSentence() throws {
        let missing = "/nonexistent-pingem/targets"
        #expect(throws: (any Error).self) { try TargetsFile.read(missing) }
        do { _ = try TargetsFile.read(missing) } catch {
            #expect("\(error)" == "targets file \(missing) does not exist: create it with one target a line, or give the right path to --targets-file.")
        }
        do { _ = try TargetsFile.read("/tmp") } catch {
            #expect("\(error)" == "targets file /tmp is a folder: give the path of a file with one target a line.")
        }
    }
}

@Suite struct ReloadScheduleTests {
    @Test func anAddedTargetTakesTheMiddleOfTheWidestFreeStretch() {
        #expect(offsetInLargestGap([], intervalNs: 1000) == 0)
        #expect(offsetInLargestGap([0], intervalNs: 1000) == 500)
        #expect(offsetInLargestGap([0, 500], intervalNs: 1000) == 250)
        #expect(offsetInLargestGap([0, 250, 500], intervalNs: 1000) == 750)
        // The widest stretch wraps around the interval's end.
        #expect(offsetInLargestGap([300, 400], intervalNs: 1000) == 850)
        #expect(offsetInLargestGap([900, 100], intervalNs: 1000) == 500)
    }

    /// Kept targets keep their slots and sequences; a removed one sends
    /// nothing more; an added one starts at its next slot at least
    /// addLeadNs ahead, at a free offset; a re-added one comes back at its
    /// own offset and index with sequences that only grow.
    @Test func keptRemovedAddedAndReAddedTargetsFollowTheSchedule() {
        let h = Harness(targets: 2, interval: second)
        h.run(until: h.start + 2 * second + 100 * ms)  // t0: 0, 1, 2; t1: 0, 1
        #expect(h.engine.offsets == [0, 500 * ms])
        _ = h.engine.cutBatch()
        h.engine.remove(target: 1)
        let added = h.engine.add(RecorderTarget(id: 9, name: "new", host: "198.18.0.9"))
        #expect(added == 2)
        h.engine.setAddress(IPAddress(parsing: "198.18.0.9")!, forTarget: added)
        let changes = h.engine.cutBatch().targetChanges
        // 2.1 s + 0.2 s lead: the new target's first slot is 3.25 s (offset 0.25 s).
        let wall0 = h.clock.wallNs() - 2100 * ms
        #expect(changes == [
            .removed(targetID: 2, endNs: wall0 + 2100 * ms),
            .added(SessionTargetRecord(sessionID: 7, targetID: 9, offsetNs: 250 * ms), startNs: wall0 + 3250 * ms),
        ])
        h.run(until: h.start + 4 * second + 300 * ms)
        let sent = h.transport.sent.withLock { $0 }
        #expect(sent.filter { $0.destination == addrA }.map(\.sequence) == [0, 1, 2, 3, 4])
        #expect(sent.filter { $0.destination == addrB }.map(\.sequence) == [0, 1])
        let new = sent.filter { $0.destination == IPAddress(parsing: "198.18.0.9")! }
        #expect(new.map(\.sequence) == [3, 4])
        #expect(new.map { $0.mono - h.start } == [3250 * ms, 4250 * ms])

        // Back again: index 1, offset 0.5 s, its first slot at or after 4.3 + 0.2 s.
        #expect(h.engine.add(RecorderTarget(id: 2, name: "t1", host: "h1")) == 1)
        h.run(until: h.start + 6 * second)
        let back = h.transport.sent.withLock { $0 }.filter { $0.destination == addrB }
        #expect(back.map(\.sequence) == [0, 1, 4, 5])
        #expect(back.suffix(2).map { $0.mono - h.start } == [4500 * ms, 5500 * ms])
        #expect(h.engine.cutBatch().gaps.isEmpty)
    }
}
