import ArgumentParser
import Foundation
import Store

@main
struct Pingem: ParsableCommand {
    static let version = "0.1.0"
    static let configuration = CommandConfiguration(
        commandName: "pingem",
        abstract: "Record every ICMP echo probe with exact times; report any window later.",
        discussion: """
            pingem record sends probes on a fixed schedule and stores every probe's send time \
            and every reply's receive time in SQLite. pingem report cuts any window of that \
            history into epochs: loss, latency percentiles, jitter and outages.
            """,
        version: version,
        subcommands: [Record.self, Report.self, Export.self, Status.self, Watch.self, Serve.self, Dump.self, Prune.self]
    )
}

/// `--db`, shared by every subcommand.
struct DatabaseOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "SQLite database file.",
        discussion: "Default: $PINGEM_DB, else $XDG_DATA_HOME/pingem/pingem.db, else ~/.local/share/pingem/pingem.db.",
        valueName: "path"))
    var db: String?

    var path: String {
        db ?? Database.defaultPath(environment: ProcessInfo.processInfo.environment)
    }
}

/// Prints one sentence to stderr and exits non-zero: the shape of every
/// runtime error the user sees (usage errors go through ValidationError, 64).
func fail(_ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("pingem: \(error)\n".utf8))
    return ExitCode.failure
}

/// A usage error found after parsing (an unknown target, say): one sentence
/// and exit 64 (EX_USAGE), like ArgumentParser's own ValidationError.
func usageFail(_ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("pingem: \(error)\n".utf8))
    return ExitCode(64)
}
