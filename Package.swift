// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "pingem",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pingem", targets: ["pingem"]),
        .executable(name: "pingem-bench", targets: ["pingem-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
    ],
    targets: [
        // System library over Debian's libsqlite3-dev; only Store imports it.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // The only code that touches SQLite; owns the schema and migrations.
        .target(name: "Store", dependencies: ["CSQLite"]),
        // The only code that touches sockets and clocks.
        .target(name: "Recorder", dependencies: ["Store"]),
        // Aggregation and rendering, pure Swift over Store's record types.
        .target(name: "Reports", dependencies: ["Store"]),
        // pingem serve: the live export page, Server-Sent Events and
        // Prometheus /metrics over Hummingbird; read-only on the database.
        .target(
            name: "Serve",
            dependencies: [
                "Store", "Reports",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        // Thin CLI: one file per subcommand.
        .executableTarget(
            name: "pingem",
            dependencies: [
                "Store", "Recorder", "Reports", "Serve",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The benchmark: synthetic histories through the real Store, timed
        // reports of them, figures for docs/BENCHMARKS.md.
        .executableTarget(
            name: "pingem-bench",
            dependencies: [
                "Store", "Reports", "Recorder",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Test host for end-to-end tests: answers echo on a TUN device with
        // scripted behaviour per destination and logs what it did.
        .executableTarget(name: "pingem-responder", path: "Tests/Responder"),
        // What the test targets share: the seeded generator, temporary
        // folders, running the built binaries, free ports, history builders
        // and the one rule for a test that cannot run here (reported
        // skipped, but failed under CI).
        .target(name: "TestSupport", dependencies: ["Store"], path: "Tests/TestSupport"),
        .testTarget(name: "StoreTests", dependencies: ["Store", "TestSupport"]),
        .testTarget(name: "RecorderTests", dependencies: ["Recorder", "Store", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Store", "Serve", "TestSupport"]),
        // Real sockets against the project's test responder on a TUN device in
        // a network namespace the test creates; the live page of pingem serve
        // watched in headless Chromium over the DevTools protocol.
        .testTarget(name: "EndToEndTests", dependencies: ["Store", "Reports", "pingem", "pingem-responder", "TestSupport"]),
        // Runs the built pingem binary: help text, exit codes, one-sentence
        // errors, loopback recording.
        .testTarget(name: "CLITests", dependencies: ["pingem", "Store", "TestSupport"]),
        // Fault injection around the real binary: kill -9, SIGSTOP, link
        // down, locked and full databases, two recorders, --user. Needs root
        // (reported skipped otherwise; fails under CI).
        .testTarget(name: "ReliabilityTests", dependencies: ["pingem", "Recorder", "Store", "Reports", "TestSupport"]),
        // pingem export html: embedded figures equal the report's, escaping,
        // atomic writes, and headless Chromium drawing the page.
        .testTarget(name: "ExportTests", dependencies: ["Reports", "Store", "pingem", "TestSupport"]),
        // pingem serve: exact /metrics over a Store-written history, SSE
        // delivery of new epochs, the chosen epoch, the non-loopback refusal, a
        // real Prometheus scraping it and headless Chromium loading the live page.
        .testTarget(
            name: "ServeTests",
            dependencies: [
                "Serve", "Reports", "Store", "pingem", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
    ]
)
