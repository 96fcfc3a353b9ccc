import ArgumentParser
import Foundation
import Reports
import Serve
import Synchronization

extension Pingem {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the export page live, and Prometheus /metrics, over HTTP.",
            discussion: """
                / is the export page, updated within a second as the recorder writes (window \
                and timeout chosen in the page). /metrics has smokeping_prober's metrics, \
                computed from the database. Read-only; keeps working across recorder restarts. \
                Listens on 127.0.0.1:8000 unless --listen names another address; the page has \
                no authentication.
                """
        )

        @Option(help: ArgumentHelp(
            "Address to listen on: 127.0.0.1:8000 (default), [::1]:8000, or one address of this machine.",
            valueName: "host:port"))
        var listen: String?

        @Option(help: ArgumentHelp("The page's window when its URL names none: 15m, 1h, 24h.", valueName: "duration"))
        var last: String = "1h"

        @Option(help: ArgumentHelp("A reply later than this counts as late, and the probe as lost (page default and /metrics).", valueName: "duration"))
        var timeout: String = "2s"

        @OptionGroup var database: DatabaseOption

        func validate() throws {
            do {
                _ = try parseListen(listen)
                _ = try parseDuration(last)
                _ = try parseDuration(timeout)
            } catch let e as ListenError {
                throw ValidationError(e.description)
            } catch let e as ReportError {
                throw ValidationError(e.description)
            }
        }

        func run() throws {
            let address = try parseListen(listen)
            if let warning = address.warning { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
            let configuration = ServeConfiguration(
                databasePath: database.path, listen: address, defaultLast: last, timeoutNs: try parseDuration(timeout))
            let path = database.path
            let shown = address.host.contains(":") ? "[\(address.host)]" : address.host
            // The root command is synchronous (record relies on running on the
            // main thread for its signal mask), so serve waits for its server here.
            // Serve must end on SIGINT and SIGTERM, however the parent handed
            // them down: defaults restored before any server thread exists
            // (threads inherit the mask).
            System.restoreDefaultAction([SIGINT, SIGTERM])
            let outcome = ServeOutcome()
            Task {
                do {
                    let app = makeApplication(configuration) { port in
                        FileHandle.standardError.write(Data("pingem: serving \(path) on http://\(shown):\(port)/\n".utf8))
                    }
                    // No graceful shutdown: serve only reads, and an open event stream
                    // would hold a graceful shutdown forever. SIGINT and SIGTERM end it.
                    try await app.runService(gracefulShutdownSignals: [])
                } catch {
                    outcome.error.withLock { $0 = "\(error)" }
                }
                outcome.done.signal()
            }
            outcome.done.wait()
            if let error = outcome.error.withLock({ $0 }) {
                FileHandle.standardError.write(Data("pingem: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}

/// How the server task ended, for the synchronous command waiting on it.
final class ServeOutcome: Sendable {
    let done = DispatchSemaphore(value: 0)
    let error = Mutex<String?>(nil)
}
