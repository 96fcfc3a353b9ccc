// pingem dump and pingem prune through the binary: a dump (and a report) of
// a compacted database equals the same history in plain rows byte for byte;
// prune deletes exactly the raw rows before its cutoff and keeps the rest;
// a recorder keeps committing while prune runs.
import Foundation
@testable import Store
import Testing
import TestSupport

/// Hours of two targets at 1 s ending about `endAgo` before now, with every
/// kind of row: first replies in rows and reply rows, duplicates (one
/// smaller than its row's), late replies, orphans, send and ICMP errors.
/// Returns the history's start (a whole UTC hour).
@discardableResult
func makeRichHistory(at path: String, hours: Int, endAgo: Int64 = 3 * 3600 * second, seed: UInt64 = 11) throws -> Int64 {
    let db = try Database(path: path, mode: .readWrite)
    let now = Int64(Date().timeIntervalSince1970) * second
    let start = (now - endAgo - Int64(hours) * 3600 * second) / (3600 * second) * (3600 * second)
    let ids = [try db.target(name: "router", host: "198.18.0.1").id, try db.target(name: "far, away", host: "198.18.0.2").id]
    let session = try db.beginTestSession(intervalNs: second, startedNs: start, targets: ids, offsetStepNs: 500_000_000)
    var state = seed
    func next(_ n: UInt64) -> Int64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int64((state >> 33) % n)
    }
    var batch = WriteBatch()
    batch.addresses = ids.map { AddressRecord(targetID: $0, sinceNs: start, address: "198.18.0.\($0)") }
    for s in 0..<(hours * 3600) {
        for (i, id) in ids.enumerated() {
            let sent = start + Int64(s) * second + Int64(i) * 500_000_000 + next(70_000)
            let rtt = 20_000_000 + next(4_000_000)
            var probe = ProbeRecord(sentNs: sent, targetID: id, rttNs: rtt)
            switch next(100) {
            case 0: probe.rttNs = nil; probe.sendError = 101
            case 1: probe.rttNs = nil
            case 2: probe.rttNs = nil
                batch.icmpErrors.append(ICMPErrorRecord(sentNs: sent, targetID: id, rttNs: 1_500_000, family: 4, type: 3, code: 1, source: "198.18.255.1"))
            case 3, 4: probe.rttNs = nil; batch.replies.append(ReplyRecord(sentNs: sent, targetID: id, rttNs: rtt))
            case 5: probe.rttNs = nil; batch.replies.append(ReplyRecord(sentNs: sent, targetID: id, rttNs: 4_000_000_000))
            case 6: batch.replies += [ReplyRecord(sentNs: sent, targetID: id, rttNs: rtt + 7), ReplyRecord(sentNs: sent, targetID: id, rttNs: rtt - 7)]
            case 7: batch.replies.append(ReplyRecord(sentNs: sent + 3, targetID: id, rttNs: rtt))
            default: break
            }
            batch.probes.append(probe)
        }
        if batch.probes.count >= 5000 || s == hours * 3600 - 1 {
            batch.heartbeatNs = batch.probes.last!.sentNs
            try db.write(batch, session: session)
            batch = WriteBatch()
        }
    }
    try db.endSession(session, stoppedNs: start + Int64(hours) * 3600 * second)
    return start
}

/// ISO 8601 UTC with milliseconds, as --since and --until take it.
func iso(_ ns: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: Date(timeIntervalSince1970: Double(ns) / 1e9))
}

func lines(_ text: String) -> Int { text.split(separator: "\n").count }

@Suite struct DumpPruneCLITests {
    @Test func dumpAndReportOfACompactedDatabaseEqualThePlainOne() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let plain = dir.appendingPathComponent("plain.db").path
        let compacted = dir.appendingPathComponent("compacted.db").path
        let start = try makeRichHistory(at: plain, hours: 3)
        #expect(try makeRichHistory(at: compacted, hours: 3) == start)
        // Fixed windows (not --last: two runs must see the same window).
        let a = iso(start + 1_234 * second + 500_000_000), b = iso(start + 9_000 * second + 250_000_000)
        do {
            let db = try Database(path: compacted, mode: .readWrite)
            #expect(try db.compact(hoursEndingBefore: .max - 2 * Database.blockSpanNs, limit: 100) == 6)
        }
        var probes = 0
        for arguments in [
            ["dump"], ["dump", "--table", "reply"], ["dump", "--table", "icmp_error"],
            ["dump", "--since", a, "--until", b, "--target", "far, away"],
            ["dump", "--table", "reply", "--target", "router", "--since", a],
            ["report", "--since", iso(start - 3600 * second), "--until", iso(start + 4 * 3600 * second), "--epoch", "5m", "--format", "json"],
            ["report", "--since", a, "--until", b, "--timeout", "5s", "--format", "csv", "--target", "router"],
        ] {
            let a = try pingem(arguments + ["--db", plain])
            let b = try pingem(arguments + ["--db", compacted])
            #expect(a.status == 0 && b.status == 0, "\(arguments): \(a.stderr) \(b.stderr)")
            #expect(a.stdout == b.stdout, "\(arguments) differs after compaction")
            #expect(lines(a.stdout) > 1, "\(arguments): \(a.stdout.prefix(200))")
            if arguments == ["dump"] { probes = lines(a.stdout) - 1 }
        }
        #expect(probes == 2 * 3 * 3600)
        let head = try pingem(["dump", "--db", compacted]).stdout.split(separator: "\n").prefix(2)
        #expect(head.first == "sent_ns,target,rtt_ns,send_error")
        let sqlite = try pingem(["dump", "--db", compacted, "--table", "icmp_error"]).stdout.split(separator: "\n").first
        #expect(sqlite == "sent_ns,target,rtt_ns,family,type,code,source")
        // A label with a comma is quoted.
        #expect(try pingem(["dump", "--db", compacted, "--target", "far, away"]).stdout.contains(",\"far, away\","))
    }

    @Test(arguments: [
        (["dump", "--table", "probes"], ""),
        (["dump", "--since", "yesterday-ish"], ""),
        (["prune"], "--older-than"),
        (["prune", "--older-than", "400"], "is not a duration"),
        (["prune", "--older-than", "0d"], "positive"),
        (["prune", "--older-than", "90m"], "at least 2h"),
        (["record", "--retain", "1h", "127.0.0.1"], "--retain"),
        (["record", "--retain", "x", "127.0.0.1"], "--retain"),
    ])
    func usageErrorsExit64WithOneSentence(arguments: [String], phrase: String) throws {
        try expectUsageError(arguments, phrase: phrase)
    }

    @Test func pruneDeletesOnlyOldRawRowsAndGivesSpaceBack() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("p.db").path
        // 6 hours ending 1 h ago; prune what is older than 4 h.
        try makeRichHistory(at: db, hours: 6, endAgo: 3600 * second)
        do {
            let database = try Database(path: db, mode: .readWrite)
            try database.compact(hoursEndingBefore: Int64(Date().timeIntervalSince1970) * second - 3 * 3600 * second, limit: 100)
        }
        let before = try pingem(["dump", "--db", db]).stdout
        let size = { (try? FileManager.default.attributesOfItem(atPath: db)[.size] as? Int) ?? 0 }
        let sizeBefore = size()
        let r = try pingem(["prune", "--older-than", "4h", "--db", db])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("deleted "), "\(r.stdout)")
        let after = try pingem(["dump", "--db", db]).stdout
        let cutoff = Int64(Date().timeIntervalSince1970) * second - 4 * 3600 * second
        let kept = before.split(separator: "\n").dropFirst().filter { Int64($0.prefix { $0 != "," })! >= cutoff + 60 * second }
        let left = after.split(separator: "\n").dropFirst()
        #expect(left.allSatisfy { Int64($0.prefix { $0 != "," })! >= cutoff - 60 * second })
        #expect(kept.allSatisfy { left.contains($0) })
        #expect(left.count < before.split(separator: "\n").count / 2)
        #expect(size() < sizeBefore)
        // Sessions and targets stay: status still names them.
        let status = try pingem(["status", "--db", db])
        #expect(status.stdout.contains("router"))
        #expect(status.stdout.contains("stopped cleanly"))
    }

    /// A recorder is never made to wait out its busy timeout by prune: no
    /// batch fails, it stops cleanly, every probe it sent is stored.
    @Test(needsRecording) func aRecorderKeepsCommittingWhilePruneRuns() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("live.db").path
        try makeRichHistory(at: db, hours: 12, endAgo: 26 * 3600 * second)
        let err = Pipe()
        let p = try startPingem(["record", "127.0.0.1", "--interval", "20ms", "--flush", "100ms", "--db", db, "--verbose"], stderr: err)
        Thread.sleep(forTimeInterval: 1)
        let r = try pingem(["prune", "--older-than", "1d", "--db", db])
        Thread.sleep(forTimeInterval: 0.5)
        kill(p.processIdentifier, SIGINT)
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("deleted \(2 * 12 * 3600) probes"), "\(r.stdout)")
        #expect(p.terminationStatus == 0, "\(log)")
        #expect(!log.contains("cannot write"), "\(log)")
        let sent = log.split(separator: "\n").filter { $0.hasSuffix(" sent") && $0.contains(": probe ") }.count
        let stored = lines(try pingem(["dump", "--db", db, "--target", "127.0.0.1"]).stdout) - 1
        #expect(stored == sent && sent > 50)
    }

    /// A version 1 file (auto_vacuum=NONE) is migrated by the first
    /// read-write open and converted once by prune, which says so.
    @Test func pruneConvertsAVersion1DatabaseOnceAndSaysSo() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("v1.db").path
        let now = Int64(Date().timeIntervalSince1970) * second
        let old = now - 3 * 86_400 * second, young = now - 3600 * second
        let setup = Process()
        setup.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        setup.arguments = [db]
        let input = Pipe()
        setup.standardInput = input
        try setup.run()
        input.fileHandleForWriting.write(Data((schemaVersion1 + """
            PRAGMA user_version = 1;
            PRAGMA journal_mode = WAL;
            INSERT INTO target VALUES (1, 'router', '198.18.0.1');
            INSERT INTO session VALUES (1, 5, 42, 'h', '0.1.0', 'raw', 1000000000, 56, \(old), \(young + 1), \(young + 1), 0);
            INSERT INTO probe VALUES (\(old), 1, 20000000, NULL), (\(old + second), 1, NULL, NULL), (\(young), 1, 21000000, NULL);
            INSERT INTO reply VALUES (\(old + second), 1, 30000000), (\(young), 1, 22000000);
            """).utf8))
        try input.fileHandleForWriting.close()
        setup.waitUntilExit()
        #expect(setup.terminationStatus == 0)
        let r = try pingem(["prune", "--older-than", "1d", "--db", db])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("deleted 2 probes and 1 reply and ICMP error rows"), "\(r.stdout)")
        #expect(r.stderr.contains("converting it once with a full VACUUM"), "\(r.stderr)")
        #expect(try pingem(["dump", "--db", db]).stdout == "sent_ns,target,rtt_ns,send_error\n\(young),router,21000000,\n")
        #expect(try pingem(["dump", "--db", db, "--table", "reply"]).stdout == "sent_ns,target,rtt_ns\n\(young),router,22000000\n")
        // Converted: the next prune has nothing to say.
        let again = try pingem(["prune", "--older-than", "1d", "--db", db])
        #expect(again.status == 0 && again.stderr.isEmpty, "\(again.stderr)")
        #expect(try Database(path: db, mode: .readOnly).hasIncrementalVacuum())
    }
}
