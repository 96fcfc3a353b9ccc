// Every test works in a folder of its own under /tmp, so tests never see
// each other's databases and a crashed run leaves nothing a later one reads.
public import Foundation

/// A fresh, empty folder; the caller removes it (or uses TemporaryFolder).
public func temporaryDirectory(_ prefix: String = "pingem-test") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A fresh folder removed by `remove()` or, at the latest, when the value
/// goes away. Keep it alive while its files are used (`defer { remove() }`).
public final class TemporaryFolder: Sendable {
    public let url: URL

    /// Does not throw, so a suite can hold one as a stored property; a
    /// /tmp that refuses a new folder is a broken machine, not a result.
    public init(_ prefix: String = "pingem-test") {
        do { url = try temporaryDirectory(prefix) } catch { preconditionFailure("cannot create a folder in /tmp: \(error)") }
    }

    public var path: String { url.path }

    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    public func remove() { try? FileManager.default.removeItem(at: url) }

    deinit { remove() }
}
