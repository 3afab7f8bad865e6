// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "FaceLedger",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "faceledger", targets: ["faceledger"]),
        .library(name: "EventLog", targets: ["EventLog"]),
        .library(name: "Postgres", targets: ["Postgres"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // `merge` and `AsyncTimerSequence`: the projector's and the audit tail's wake-ups as one sequence.
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // Tracing export (`serve --otlp-endpoint`): OTLP over HTTP only, so gRPC is not built.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // libpq, as Debian's libpq-dev installs it. Only the `Postgres` module imports it.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        // A small, safe, Sendable API over libpq: connections on their own threads, a pool, a listener
        // (the pool and the listener are services, closing what they opened when they stop).
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The append-only event log and the schema migrations (the SQL files of `migrations/`).
        .target(
            name: "EventLog",
            dependencies: [
                "Postgres", .product(name: "Logging", package: "swift-log"),
                // SHA-256 of the hash chain, Ed25519 of the signed digests.
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            plugins: ["EmbedMigrations"]
        ),
        // The domain: commands, events, decide and evolve. Pure Swift, no I/O, no wire.
        .target(name: "LedgerDomain"),
        // The Rekognition wire: error codes and statuses, response shapes, the rendering of outcomes.
        .target(name: "RekognitionWire", dependencies: ["LedgerDomain"]),
        // The write side (command processor) and the read side (projector, read models) on PostgreSQL.
        .target(
            name: "LedgerService",
            dependencies: [
                "LedgerDomain", "RekognitionWire", "EventLog", "Postgres",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                // AES-GCM of the biometrics in the log and of their data keys.
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // A private PostgreSQL cluster under the data directory: the embedded default.
        .target(
            name: "EmbeddedPostgres",
            dependencies: ["Postgres", .product(name: "Logging", package: "swift-log")]
        ),
        // The `serve` process: HTTP front and background services.
        .target(
            name: "FaceLedgerServer",
            dependencies: [
                "EventLog", "Postgres", "EmbeddedPostgres", "LedgerDomain", "RekognitionWire", "LedgerService",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ]
        ),
        .executableTarget(
            name: "faceledger",
            dependencies: [
                "FaceLedgerServer", "EventLog", "Postgres", "EmbeddedPostgres", "LedgerDomain", "RekognitionWire", "LedgerService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Appends/s of the event log under concurrent writers (scripts/benchmark-appends runs it beside pgbench).
        .executableTarget(
            name: "AppendThroughput",
            dependencies: ["EventLog", "Postgres"],
            path: "Benchmarks/AppendThroughput"
        ),
        // Build-time tool: turns `migrations/*.sql` into Swift string literals compiled into EventLog.
        .executableTarget(name: "MigrationEmbedder"),
        .plugin(
            name: "EmbedMigrations",
            capability: .buildTool(),
            dependencies: ["MigrationEmbedder"]
        ),
        .target(
            name: "TestSupport",
            dependencies: ["Postgres", "EventLog", "EmbeddedPostgres"],
            path: "Tests/TestSupport"
        ),
        // The domain's tests read its decisions as a client would, through the wire's rendering.
        .testTarget(name: "LedgerDomainTests", dependencies: ["LedgerDomain", "RekognitionWire"]),
        .testTarget(
            name: "FaceLedgerServerTests",
            dependencies: [
                "FaceLedgerServer", "LedgerDomain", "RekognitionWire", "LedgerService", "TestSupport",
                // In-process requests through the real router (`app.test(.router)`).
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "RekognitionWireTests", dependencies: ["RekognitionWire", "LedgerDomain"]),
        .testTarget(name: "LedgerServiceTests", dependencies: ["LedgerService", "LedgerDomain", "RekognitionWire", "EventLog", "Postgres", "TestSupport"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport", "EmbeddedPostgres"]),
        .testTarget(name: "EventLogTests", dependencies: ["EventLog", "Postgres", "TestSupport"]),
        .testTarget(name: "EmbeddedPostgresTests", dependencies: ["EmbeddedPostgres", "Postgres", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
