import Foundation
import Glibc
import Synchronization

// Headless Chromium driven over the Chrome DevTools Protocol on a pipe
// (`--remote-debugging-pipe`): Chromium reads NUL-terminated JSON messages on
// its fd 3 and writes its answers and events on fd 4. Foundation.Process
// cannot hand a child extra descriptors, so Chromium is started with
// posix_spawn, its file actions dup2-ing two pipes onto 3 and 4.
//
// Chromium runs in a process group of its own (its renderers, GPU and
// zygote processes join it), so quit() can end all of them by that one id.

struct DevToolsError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

final class DevToolsBrowser: Sendable {
    let pid: pid_t
    /// Our ends: we write commands to `commands` (its fd 3), read from `replies` (its fd 4).
    private let commands: Int32
    private let replies: Int32
    private let nextID = Atomic<Int>(1)
    /// Chromium's messages as raw JSON: answers by their command's id, and
    /// events (messages without an id) in order. Parsed once, on arrival.
    private let received = Mutex<(answers: [Int: Data], events: [Data])>(([:], []))
    private let ended = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)
    let logPath: String

    init(chromium: String, profile: String, logPath: String) throws {
        self.logPath = logPath
        var toChrome: [Int32] = [0, 0], fromChrome: [Int32] = [0, 0]
        guard pipe(&toChrome) == 0, pipe(&fromChrome) == 0 else {
            throw DevToolsError("pipe: \(String(cString: strerror(errno)))")
        }
        // Close-on-exec, so no other child the test starts inherits them
        // (pipe2 is not visible from Swift's Glibc).
        for fd in toChrome + fromChrome { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // The child's ends are moved above 4 first: dup2 onto fd 3 or 4 of a
        // descriptor that already is 3 or 4 would keep its close-on-exec flag.
        let childReads = fcntl(toChrome[0], F_DUPFD_CLOEXEC, 10)
        let childWrites = fcntl(fromChrome[1], F_DUPFD_CLOEXEC, 10)
        Glibc.close(toChrome[0]); Glibc.close(fromChrome[1])
        defer { Glibc.close(childReads); Glibc.close(childWrites) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_adddup2(&actions, childReads, 3)
        posix_spawn_file_actions_adddup2(&actions, childWrites, 4)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        // A test runner may block or ignore signals; Chromium gets the defaults.
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none); sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)

        let arguments = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            "--remote-debugging-pipe", "--user-data-dir=" + profile, "--window-size=1280,1000", "about:blank",
        ]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child = pid_t()
        let spawned = posix_spawn(&child, chromium, &actions, &attributes, &argv, environ)
        guard spawned == 0 else {
            Glibc.close(toChrome[1]); Glibc.close(fromChrome[0])
            throw DevToolsError("posix_spawn \(chromium): \(String(cString: strerror(spawned)))")
        }
        pid = child
        commands = toChrome[1]
        replies = fromChrome[0]
        // Chromium closing its end before the test reads an answer is a
        // failure the test reports, not a SIGPIPE that ends the test runner.
        signal(SIGPIPE, SIG_IGN)
        let fd = replies
        Thread.detachNewThread { [self] in
            var pending = Data()
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                pending.append(contentsOf: buffer[0..<n])
                while let nul = pending.firstIndex(of: 0) {
                    let message = Data(pending[pending.startIndex..<nul])
                    let object = try? JSONSerialization.jsonObject(with: message) as? [String: Any]
                    if let id = object?["id"] as? Int {
                        received.withLock { $0.answers[id] = message }
                    } else {
                        received.withLock { $0.events.append(message) }
                    }
                    pending = Data(pending[pending.index(after: nul)...])
                }
            }
            ended.store(true, ordering: .releasing)
        }
    }

    /// Sends one command and waits (at most `timeout` seconds) for its answer's
    /// "result"; an "error" answer, Chromium exiting or the timeout throws.
    @discardableResult
    func send(_ method: String, _ params: [String: Any] = [:], session: String? = nil,
              timeout: Double = 15) throws -> [String: Any] {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if let session { message["sessionId"] = session }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(commands, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw DevToolsError("\(method): writing to Chromium failed: \(String(cString: strerror(errno)))") }
            offset += n
        }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let data = received.withLock({ $0.answers.removeValue(forKey: id) }) {
                let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
                if let error = object["error"] as? [String: Any] {
                    throw DevToolsError("\(method): \(error["message"] ?? error)")
                }
                return object["result"] as? [String: Any] ?? [:]
            }
            if ended.load(ordering: .acquiring) && received.withLock({ $0.answers[id] == nil }) {
                throw DevToolsError("\(method): Chromium exited; its log: \(chromiumLog)")
            }
            usleep(10_000)
        }
        throw DevToolsError("\(method): no answer from Chromium within \(timeout) s")
    }

    /// Every event received so far (messages without an id).
    var events: [(method: String, params: [String: Any])] {
        received.withLock { $0.events }.compactMap { data in
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let method = object["method"] as? String else { return nil }
            return (method, object["params"] as? [String: Any] ?? [:])
        }
    }

    /// What a page must never cause: an uncaught exception, a console error
    /// or warning, a CSP violation (the page itself logs nothing).
    var pageProblems: [(method: String, params: [String: Any])] {
        events.filter { event in
            switch event.method {
            case "Runtime.exceptionThrown": return true
            case "Runtime.consoleAPICalled": return ["error", "assert", "warning"].contains(event.params["type"] as? String ?? "")
            case "Log.entryAdded":
                let entry = event.params["entry"] as? [String: Any] ?? [:]
                return ["error", "warning"].contains(entry["level"] as? String ?? "") || entry["source"] as? String == "security"
            default: return false
            }
        }
    }

    var chromiumLog: String { String((try? String(contentsOfFile: logPath, encoding: .utf8))?.suffix(3000) ?? "") }

    /// Attaches to the first page target (the about:blank Chromium opened),
    /// returning the flat-mode session id for page commands.
    func attachToPage() throws -> String {
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            let infos = try send("Target.getTargets")["targetInfos"] as? [[String: Any]] ?? []
            if let page = infos.first(where: { $0["type"] as? String == "page" }), let id = page["targetId"] as? String {
                let attached = try send("Target.attachToTarget", ["targetId": id, "flatten": true])
                guard let session = attached["sessionId"] as? String else { throw DevToolsError("Target.attachToTarget gave no sessionId: \(attached)") }
                return session
            }
            usleep(100_000)
        }
        throw DevToolsError("Chromium showed no page target within 15 s")
    }

    /// Runtime.evaluate with returnByValue: the expression's JSON value; a
    /// thrown exception throws.
    func evaluate(_ expression: String, session: String) throws -> Any? {
        let result = try send("Runtime.evaluate", ["expression": expression, "returnByValue": true], session: session)
        if let exception = result["exceptionDetails"] as? [String: Any] {
            throw DevToolsError("evaluating \(expression.prefix(80)): \(exception)")
        }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Browser.close, then the process group killed if still there; waits for it.
    func quit() {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        _ = try? send("Browser.close", timeout: 5)
        let deadline = Date().addingTimeInterval(5)
        var status: Int32 = 0
        while Date() < deadline {
            if waitpid(pid, &status, WNOHANG) == pid { Glibc.close(commands); Glibc.close(replies); killGroup(); return }
            usleep(50_000)
        }
        killGroup()
        waitpid(pid, &status, 0)
        Glibc.close(commands); Glibc.close(replies)
    }

    /// SIGKILL to Chromium's own process group (its pid), so no renderer lingers.
    private func killGroup() { kill(-pid, SIGKILL) }

    deinit { quit() }
}
