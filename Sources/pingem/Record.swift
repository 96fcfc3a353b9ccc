import ArgumentParser
import Recorder
import Reports

extension Pingem {
    struct Record: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Probe targets on a fixed schedule and store every probe and reply.",
            discussion: """
                Runs until SIGINT or SIGTERM, then writes everything it has and exits 0. \
                A target is a host name or address, optionally labelled: home-router=192.168.1.1. \
                Options after a comma apply to that target alone, over the global flags: \
                isp1=192.0.2.1,interface=eth0 gw6=example.com,6 voip=192.0.2.9,tos=ef,source=192.0.2.20 \
                (4, 6, source=ADDR, interface=NAME, tos=VALUE).
                """
        )

        @Argument(help: ArgumentHelp("Hosts to probe: name, address, or label=host, with options after a comma.", valueName: "target"))
        var targets: [String] = []

        @OptionGroup var probeOptions: ProbeOptionFlags

        @Option(help: ArgumentHelp("More targets, one a line (# comments); SIGHUP re-reads it without ending the session.", valueName: "file"))
        var targetsFile: String?

        @Option(help: ArgumentHelp("Time between two probes of one target (10ms or more).", valueName: "duration"))
        var interval: String = "1s"

        @Option(help: ArgumentHelp("How often each target's path is probed hop by hop (TTL 1, 2, ...; every --interval while it loses probes); 0: never.", valueName: "duration"))
        var pathInterval: String = "30s"

        @Option(help: ArgumentHelp("ICMP payload bytes (48 or more, as ping's -s).", valueName: "bytes"))
        var size: Int = 56

        @Option(help: ArgumentHelp("How often a batch of probes is committed; a hard kill loses at most one batch.", valueName: "duration"))
        var flush: String = "1s"

        @Flag(help: "Log every probe and reply on stderr.")
        var verbose = false

        @Option(help: ArgumentHelp("Started as root for a raw socket: switch to this user right after opening the sockets and the database.", valueName: "name"))
        var user: String?

        @Option(help: ArgumentHelp("File mode bits to withhold from the database, its folder and lock file (octal).", valueName: "mask"))
        var umask: String = "077"

        // For tests of the bound; the default is documented in the README.
        @Option(help: .hidden)
        var maxHeldProbes: Int = RecordOptions.defaultMaxHeldProbes

        // For tests of names that change while recording (default 5 min).
        @Option(help: .hidden)
        var resolveEvery: String = "5m"

        @Option(help: ArgumentHelp("Delete raw probes sent longer ago than this (2h or more, e.g. 400d), once an hour; summaries stay.", valueName: "duration"))
        var retain: String?

        @OptionGroup var database: DatabaseOption

        var options: RecordOptions {
            get throws {
                let specs: [TargetSpec], fileSpecs: [TargetSpec]
                do {
                    specs = try targets.map(TargetSpec.init(parsing:))
                    fileSpecs = try targetsFile.map(TargetsFile.read) ?? []
                } catch { throw ValidationError("\(error)") }
                func duration(_ text: String, _ flag: String) throws -> Int64 {
                    do { return try parseDuration(text) } catch {
                        throw ValidationError("--\(flag): \(error)")
                    }
                }
                guard let mask = UInt32(umask, radix: 8) else {
                    throw ValidationError("--umask must be an octal mode between 000 and 777, e.g. 077.")
                }
                var recordOptions = RecordOptions(
                    targets: specs, intervalNs: try duration(interval, "interval"), payloadSize: size,
                    flushNs: try duration(flush, "flush"), databasePath: database.path,
                    verbose: verbose, version: Pingem.version, user: user, umask: mask,
                    maxHeldProbes: maxHeldProbes, resolveEveryNs: try duration(resolveEvery, "resolve-every"),
                    retainNs: try retain.map { try duration($0, "retain") },
                    probeDefaults: try probeOptions.options,
                    targetsFile: targetsFile, fileTargets: fileSpecs)
                recordOptions.pathIntervalNs = pathInterval == "0" ? 0 : try duration(pathInterval, "path-interval")
                return recordOptions
            }
        }

        func validate() throws {
            do { try RecorderService.validate(try options) } catch let e as RecorderError {
                throw ValidationError(e.description)
            }
        }

        func run() throws {
            do {
                try RecorderService.run(try options)
            } catch {
                throw fail(error)
            }
        }
    }
}

/// -4, -6, --source, --interface, --tos: how every target is probed unless
/// it gives its own (record, and watch, which records too).
struct ProbeOptionFlags: ParsableArguments {
    @Flag(name: .customShort("4"), help: "Resolve names to IPv4 addresses only.")
    var ipv4 = false

    @Flag(name: .customShort("6"), help: "Resolve names to IPv6 addresses only.")
    var ipv6 = false

    @Option(help: ArgumentHelp("Send from this local address (bind).", valueName: "address"))
    var source: String?

    @Option(help: ArgumentHelp("Send by this interface whatever the routes say (SO_BINDTODEVICE).", valueName: "name"))
    var interface: String?

    @Option(help: ArgumentHelp("TOS byte / IPv6 traffic class: 0-255, 0x hex, or a DSCP class (ef, af11-af43, cs0-cs7, le, va).", valueName: "value"))
    var tos: String?

    var options: ProbeOptions {
        get throws {
            if ipv4 && ipv6 { throw ValidationError("-4 and -6 were both given: choose one, or give the family per target (host,4 and host,6).") }
            var options = ProbeOptions(family: ipv4 ? .v4 : ipv6 ? .v6 : nil, interface: interface)
            if let source {
                guard let address = IPAddress(parsing: source) else {
                    throw ValidationError("--source \(source) is not an IP address; give a numeric local address such as 192.0.2.10.")
                }
                options.source = address
            }
            do { options.tos = try tos.map { try ProbeOptions.parseTOS($0, where: "--tos") } } catch { throw ValidationError("\(error)") }
            return options
        }
    }

    /// The same flags again, for the `pingem record` a watch starts.
    var arguments: [String] {
        (ipv4 ? ["-4"] : []) + (ipv6 ? ["-6"] : []) + (source.map { ["--source", $0] } ?? [])
            + (interface.map { ["--interface", $0] } ?? []) + (tos.map { ["--tos", $0] } ?? [])
    }
}
