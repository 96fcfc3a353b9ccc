import ArgumentParser

@main
struct Pingem: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pingem",
        abstract: "Record every ICMP echo probe with exact times; report any window later.",
        version: "0.1.0"
    )
}
