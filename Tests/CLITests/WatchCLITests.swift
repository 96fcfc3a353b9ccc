// pingem watch in a real terminal (tmux), and pingem report --fail-if,
// through the binary.
import Foundation
import Store
import Testing
import TestSupport

/// The last 40 minutes of four targets probed every 10 s: a first session
/// [now-40m, now-25m), no recorder for 10 minutes, a second session from
/// now-15m still running (its heartbeat is now). "lossy" loses every other
/// probe of the second session; "down" loses everything from now-2m on.
private func writeLiveHistory(at path: String, now: Int64) throws {
    let db = try Database(path: path, mode: .readWrite)
    let interval = 10 * second
    let targets = try [("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("lossy", "198.18.0.2"), ("down", "198.18.0.3")]
        .map { try db.target(name: $0.0, host: $0.1) }
    let runs: [(start: Int64, end: Int64, stop: Bool)] = [
        (now - 40 * 60 * second, now - 25 * 60 * second, true),
        (now - 15 * 60 * second, now - 10 * second, false),
    ]
    for (run, span) in runs.enumerated() {
        let session = try db.beginTestSession(runID: UInt64(run + 1), intervalNs: interval, startedNs: span.start, targets: targets.map(\.id))
        var batch = WriteBatch()
        batch.addresses = targets.map { AddressRecord(targetID: $0.id, sinceNs: span.start, address: $0.host) }
        var k = 0
        for sent in stride(from: span.start, through: span.end, by: Int(interval)) {
            for t in targets {
                var rtt: Int64? = Int64(t.name == "down" ? 40 : 1) * 1_000_000
                if run == 1 && t.name == "lossy" && k % 2 == 1 { rtt = nil }
                if t.name == "down" && sent >= now - 120 * second { rtt = nil }
                batch.probes.append(ProbeRecord(sentNs: sent, targetID: t.id, rttNs: rtt))
            }
            k += 1
        }
        batch.heartbeatNs = span.stop ? span.end + interval : now
        try db.write(batch, session: session)
        if span.stop { try db.endSession(session, stoppedNs: span.end + interval) }
    }
}

/// tmux on a private server, so the test never meets anyone's sessions.
private struct Tmux {
    let socket = "pingem-test-\(UUID().uuidString.prefix(8))"

    /// Runs tmux with posix_spawn and waitpid rather than Foundation's
    /// Process: the server that new-session forks keeps the descriptors and
    /// signal mask it inherits, and under Process it neither answered nor let
    /// the client be reaped.
    @discardableResult
    func run(_ arguments: [String]) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(socket)-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: file) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, file.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        var env = ProcessInfo.processInfo.environment
        env["LANG"] = "C.UTF-8"
        env.removeValue(forKey: "TMUX")
        env.removeValue(forKey: "NO_COLOR")
        let argv = (["tmux", "-u", "-L", socket] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, "tmux", &actions, &attributes, argv, envp)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (try? String(contentsOf: file, encoding: .utf8)) ?? ""
    }

    func screen() throws -> String { try run(["capture-pane", "-p", "-t", "watch"]) }

    /// The screen once `predicate` holds, or the last one seen after 15 s.
    func waitForScreen(_ predicate: (String) -> Bool) throws -> String {
        var text = ""
        for _ in 0..<75 {
            text = try screen()
            if predicate(text) { return text }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return text
    }
}

private func stripOf(_ line: Substring) -> Substring? {
    guard let open = line.firstIndex(of: "|"), let close = line.lastIndex(of: "|"), open < close else { return nil }
    return line[line.index(after: open)..<close]
}

@Suite struct WatchCLITests {
    @Test func watchInTmuxShowsTargetsLossAndGapAndQuitsWithQ() throws {
        _ = try requireExecutable(["/usr/bin/tmux"], "tmux (script/test installs it)")
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("w.db").path
        try writeLiveHistory(at: db, now: Int64(Date().timeIntervalSince1970 * 1e9))

        let tmux = Tmux()
        defer {
            _ = try? tmux.run(["kill-server"])
            try? FileManager.default.removeItem(atPath: "/tmp/tmux-\(getuid())/\(tmux.socket)")
        }
        try tmux.run(["new-session", "-d", "-s", "watch", "-x", "120", "-y", "30", "sh"])
        try tmux.run(["send-keys", "-t", "watch", "TERM=screen \(pingemBinary) watch --db \(db); echo exited=$?", "Enter"])
        let screen = try tmux.waitForScreen { $0.contains("OUTAGE") && $0.contains("lossy") }
        let lines = screen.split(separator: "\n")
        func row(_ label: String) -> Substring? { lines.first { $0.hasPrefix(label + " ") } }

        #expect(lines.first?.hasPrefix("pingem watch") == true, "\(screen)")
        #expect(lines.allSatisfy { $0.count <= 120 })
        for label in ["127.0.0.1", "::1", "lossy", "down"] { #expect(row(label) != nil, "no \(label) in\n\(screen)") }
        // lossy: every other probe of the last 15 minutes, so about half of the last
        // minute, and a quarter of the hour.
        let lossy = row("lossy").map(String.init) ?? ""
        #expect(["40%", "43%", "50%", "57%", "60%"].contains { lossy.contains($0) }, "\(lossy)")
        #expect(lossy.contains("25%") || lossy.contains("26%") || lossy.contains("24%"), "\(lossy)")
        #expect(stripOf(Substring(lossy))?.contains("x") == true, "\(lossy)")
        // The ten minutes without a recorder are blank cells between recorded ones.
        let strip = row("127.0.0.1").flatMap(stripOf).map(String.init) ?? ""
        #expect(strip.range(of: "[^ ] {9,11}[^ ]", options: .regularExpression) != nil, "no gap in \"\(strip)\"")
        #expect(row("down")?.contains("OUTAGE") == true)
        #expect(row("127.0.0.1")?.contains("OUTAGE") == false)

        // A narrower terminal (SIGWINCH): the next frame fits it.
        try tmux.run(["resize-window", "-t", "watch", "-x", "70", "-y", "30"])
        let narrow = try tmux.waitForScreen { screen in
            screen.contains("lossy") && screen.split(separator: "\n").allSatisfy { $0.count <= 70 }
                && !screen.contains("1h p50/p90")
        }
        #expect(!narrow.contains("1h p50/p90") && narrow.contains("lossy"), "\(narrow)")

        try tmux.run(["send-keys", "-t", "watch", "q"])
        // The typed command line itself shows "exited=$?": wait for the number.
        let after = try tmux.waitForScreen { $0.range(of: "exited=[0-9]", options: .regularExpression) != nil }
        #expect(after.contains("exited=0"), "\(after)")
        // The alternate screen is gone: the shell's own screen is back.
        #expect(!after.contains("lossy"), "\(after)")
    }

    @Test func watchOnceOnAPipeIsPlainText() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("o.db").path
        try writeLiveHistory(at: db, now: Int64(Date().timeIntervalSince1970 * 1e9))
        let r = try pingem(["watch", "--once", "--db", db])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.contains("\u{1B}"))
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 7, "\(r.stdout)")
        #expect(lines.contains { $0.hasPrefix("down ") && $0.contains("OUTAGE") })
    }

    /// Given targets, watch records them through a `pingem record` child and
    /// stops it cleanly when it is itself told to stop.
    @Test(needsRecording) func watchWithTargetsRecordsAndStopsItsRecorder() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("t.db").path
        let out = Pipe()
        let p = try startPingem(["watch", "127.0.0.1", "six=::1", "--interval", "100ms", "--db", db], stdout: out)
        // Plain frames on a pipe, one a second: wait until one shows both targets with an RTT.
        var seen = ""
        for _ in 0..<100 where !(seen.contains("\n127.0.0.1 ") && seen.contains("\nsix ")) {
            seen += String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        }
        #expect(seen.contains("\n127.0.0.1 ") && seen.contains("\nsix "), "\(seen)")
        #expect(!seen.contains("\u{1B}"))
        let running = try pingem(["status", "--db", db])
        #expect(running.stdout.contains("running, pid "), "\(running.stdout)")
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let status = try pingem(["status", "--db", db])
        #expect(status.stdout.contains("stopped cleanly"), "\(status.stdout)")
    }

    @Test(arguments: [
        (["--fail-if", "loss"], "no comparison"),
        (["--fail-if", "p90>80"], "duration with a unit"),
        (["--fail-if", "speed>1"], "unknown field"),
        (["--fail-if", "loss_pct>abc"], "not a number"),
        (["--fail-if", "p90>fast"], "not a duration"),
        (["--fail-if", "loss_pct=1"], "no comparison"),
    ])
    func badFailIfIsAUsageError(arguments: [String], phrase: String) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try pingem(["report"] + arguments + ["--db", dir.appendingPathComponent("x.db").path])
        #expect(r.status == 64, "\(arguments): \(r.status) \(r.stderr)")
        // ArgumentParser adds the usage line; the error itself is one sentence.
        #expect(r.stderr.split(separator: "\n").first?.contains(phrase) == true, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test func failIfExits3NamingEachCrossedThreshold() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("f.db").path
        try makeHistory(at: db, start: 1_764_000_000 * second)
        let window = ["--db", db, "--since", "2025-11-24T16:00:00Z", "--until", "2025-11-24T16:00:20Z"]
        // 3 of 10 lost (30 %); received RTTs 10..19 ms, so p90 is under 80 ms but over 15 ms.
        let crossed = try pingem(["report"] + window + ["--fail-if", "loss_pct>1", "--fail-if", "p90>80ms",
                                                        "--fail-if", "p90 >= 15ms", "--fail-if", "lost<=3"])
        #expect(crossed.status == 3, "\(crossed.stderr)")
        let said = crossed.stderr.split(separator: "\n")
        #expect(said.count == 3, "\(crossed.stderr)")
        #expect(said[0] == "pingem: router: loss_pct is 30%, crossing loss_pct>1")
        #expect(said[1].hasPrefix("pingem: router: p90 is ") && said[1].hasSuffix("ms, crossing p90>=15ms"))
        #expect(said[2] == "pingem: router: lost is 3, crossing lost<=3")
        // The report still prints.
        #expect(crossed.stdout.contains("router"))

        let fine = try pingem(["report"] + window + ["--fail-if", "loss_pct>30", "--fail-if", "p99>5s",
                                                     "--fail-if", "coverage<99%", "--format", "json"])
        #expect(fine.status == 0, "\(fine.stderr)")
        #expect(fine.stderr.isEmpty)
        #expect(fine.stdout.contains("\"router\""))
    }
}
