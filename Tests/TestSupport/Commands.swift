// The built binaries (pingem, pingem-responder) and other programs run as
// real processes to their end, with their output captured.
public import Foundation
import Synchronization

public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// A binary `swift build` put next to the running test bundle (the test
/// targets depend on the executables, so they are built first).
public func builtBinary(_ name: String) -> String {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return exe.deletingLastPathComponent().appendingPathComponent(name).path
}

/// The pingem binary built next to this test bundle.
public let pingemBinary = builtBinary("pingem")

/// Runs `executable` to its end. stdin is `stdin` or else /dev/null, so
/// nothing depends on the terminal `swift test` was started from.
@discardableResult
public func run(_ executable: String, _ arguments: [String], stdin: String? = nil,
                environment: [String: String]? = nil, in directory: URL? = nil) throws -> CommandResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let environment { p.environment = environment }
    if let directory { p.currentDirectoryURL = directory }
    let out = Pipe(), err = Pipe(), input = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = stdin == nil ? FileHandle.nullDevice : input
    try p.run()
    if let stdin {
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
    }
    // Both pipes are read to their end before waiting, stderr on a thread
    // of its own: a child blocked on one full pipe would never exit.
    let e = Mutex<Data>(Data())
    let errDone = DispatchSemaphore(value: 0)
    Thread {
        let data = err.fileHandleForReading.readDataToEndOfFile()
        e.withLock { $0 = data }
        errDone.signal()
    }.start()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    errDone.wait()
    p.waitUntilExit()
    return CommandResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                         stderr: String(decoding: e.withLock { $0 }, as: UTF8.self))
}

/// Runs the built pingem binary to its end.
@discardableResult
public func pingem(_ arguments: [String], environment: [String: String]? = nil, in directory: URL? = nil) throws -> CommandResult {
    try run(pingemBinary, arguments, environment: environment, in: directory)
}

/// The built pingem binary started (not waited for) with `arguments`; its
/// stdout and stderr go to the given pipes, or else to /dev/null. stdin is
/// left as it is, as for a recorder started from a shell.
public func startPingem(_ arguments: [String], stdout: Pipe? = nil, stderr: Pipe? = nil) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: pingemBinary)
    p.arguments = arguments
    p.standardOutput = stdout ?? FileHandle.nullDevice
    p.standardError = stderr ?? FileHandle.nullDevice
    try p.run()
    return p
}
