import Foundation

/// `pingem record` as a child of `pingem watch`, writing the same database:
/// the recorder's own signal handling, lock and flushing stay exactly as they
/// are for the command.
final class RecorderChild {
    let process = Process()
    let errorFile: URL

    init(arguments: [String]) throws {
        errorFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("pingem-watch-\(ProcessInfo.processInfo.processIdentifier).err")
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = arguments
        // Not the terminal: the child must not read keys or draw over the frame.
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: errorFile)
        try process.run()
    }

    /// The exit status once the child has exited, nil while it runs.
    func exitStatus() -> Int32? {
        process.isRunning ? nil : process.terminationStatus
    }

    func errorOutput() -> String {
        (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
    }

    /// SIGTERM (Process.terminate), then wait: the recorder commits what it
    /// holds and exits 0.
    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: errorFile)
    }
}
