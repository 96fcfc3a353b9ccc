// The one rule for a test that cannot run on this machine (not root, no
// Chromium, no tmux, no Prometheus, no network namespaces): the runner
// reports it as skipped, with the reason, never as passed. Under CI (the
// environment variable CI is set) the same test fails instead, because CI
// must run every test.
import Foundation
public import Testing

/// A test that could not run where CI says every test must.
public struct MissingRequirement: Error, CustomStringConvertible {
    public var description: String
}

/// Skips the calling test (Test.cancel: the runner reports it cancelled
/// with `reason`); under CI throws instead, which fails it.
public func skip(_ reason: String) throws -> Never {
    if ProcessInfo.processInfo.environment["CI"] != nil {
        throw MissingRequirement(description: "CI is set, so this test must run, but \(reason)")
    }
    try Test.cancel("skipped: \(reason)")
}

/// Skips the calling test (under CI: fails it) unless `met`.
public func skipUnless(_ met: Bool, _ reason: @autoclosure () -> String) throws {
    if !met { try skip(reason()) }
}

public var isRoot: Bool { geteuid() == 0 }

/// Skips unless the test runs as root; `why` says what needs it.
public func requireRoot(_ why: String) throws {
    try skipUnless(isRoot, "\(why) needs root (euid \(geteuid()))")
}

/// The first of `candidates` that is an executable file, or a skip.
public func requireExecutable(_ candidates: [String], _ what: String) throws -> String {
    let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    try skipUnless(found != nil, "\(what) is not installed (\(candidates.joined(separator: ", ")))")
    return found!
}

/// Headless Chromium, which script/test installs (apt-get install -y chromium).
public func requireChromium() throws -> String {
    try requireExecutable(["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"],
                          "chromium (apt-get install -y chromium)")
}

/// A suite or test trait: every test under it runs only where `reason`
/// answers nil, and is skipped (under CI: failed) with its answer otherwise.
public struct Requirement: SuiteTrait, TestTrait, TestScoping {
    let missing: @Sendable () -> String?

    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        if !test.isSuite, let reason = missing() { try skipUnless(false, reason) }
        try await function()
    }
}

extension Trait where Self == Requirement {
    /// Every test under this trait needs root; `why` says what for.
    public static func requiresRoot(_ why: String) -> Requirement {
        Requirement { isRoot ? nil : "\(why) needs root (euid \(geteuid()))" }
    }
}
