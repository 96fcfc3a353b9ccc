// Tests wait for what they expect, never for a fixed time, and give up at a
// limit so that a broken program fails its test instead of hanging it.
import Foundation

/// Checks `condition` every `interval` seconds until it holds or `limit`
/// seconds have passed; answers whether it held.
public func waitUntil(limit: Double, every interval: Double = 0.1, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(limit)
    while Date() < deadline {
        if try condition() { return true }
        usleep(useconds_t(interval * 1e6))
    }
    return try condition()
}
