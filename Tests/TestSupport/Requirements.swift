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
    init(_ reason: String) { description = "CI is set, so this test must run, but \(reason)" }
}

var underCI: Bool { ProcessInfo.processInfo.environment["CI"] != nil }

/// Skips the calling test (Test.cancel: the runner reports it cancelled
/// with `reason`); under CI throws instead, which fails it. Only for tests
/// that are not parameterized: see `requires` for the others.
public func skip(_ reason: String) throws -> Never {
    if underCI { throw MissingRequirement(reason) }
    try Test.cancel("skipped: \(reason)")
}

/// Skips the calling test (under CI: fails it) unless `met`.
public func skipUnless(_ met: Bool, _ reason: @autoclosure () -> String) throws {
    if !met { try skip(reason()) }
}

public var isRoot: Bool { geteuid() == 0 }

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

extension Trait where Self == ConditionTrait {
    /// The same rule as a trait: the test (or every test of the suite) runs
    /// only where `met` holds, and is otherwise reported skipped with
    /// `reason`; under CI the condition throws, which fails it. Suites and
    /// parameterized tests must use this trait rather than `skip`: the
    /// runner (swift-testing 6.3.1) reports a test case that called
    /// Test.cancel as passed.
    public static func requires(_ reason: String, _ met: @escaping @Sendable () -> Bool) -> ConditionTrait {
        .enabled(Comment(rawValue: "skipped: \(reason)")) {
            if met() { return true }
            if underCI { throw MissingRequirement(reason) }
            return false
        }
    }

    /// Runs only as root; `why` says what needs it.
    public static func requiresRoot(_ why: String) -> ConditionTrait {
        requires("\(why) needs root (euid \(geteuid()))") { isRoot }
    }
}
