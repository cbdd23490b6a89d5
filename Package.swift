// swift-tools-version: 6.2
//
// hms-act — workflow orchestrator. One target per part of DESIGN.md; dependencies point down the table
// in STYLE.md §1. Fast unit tests (`…Tests`) need no servers; `…IntegrationTests` need the local stack
// (`scripts/stack up`), so `swift test --skip IntegrationTests` is the inner loop.
import PackageDescription

let package = Package(
    name: "hms-act",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hms-act", targets: ["ActCLI"]),
        // The benchmark: built apart, so `--product hms-act` (the release image) compiles none of it.
        .executable(name: "hms-act-bench", targets: ["ActBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // `call:` steps: hms-act's own HTTP calls (pooled, non-blocking, TLS); SwiftNIO is already here.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // The console's HTML templates (`/ui`): logic-less, escaped by default, no code in the pages.
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // MARK: C shims (system libraries; only their wrapper imports them)
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),

        // MARK: Pure core (no I/O, no clock)
        .target(
            name: "ActPlaybook",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "ActEngine",
            dependencies: ["ActPlaybook"]
        ),

        // MARK: Threads and wait primitives shared by both C clients
        .target(
            name: "ActThreads"
        ),

        // MARK: Server layers
        .target(
            name: "ActPostgres",
            dependencies: [
                "CLibPQ",
                "ActThreads",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ActAMQP",
            dependencies: [
                "CRabbitMQ",
                "ActThreads",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ActStore",
            dependencies: [
                "ActPostgres",
                "ActEngine",
                "ActPlaybook",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Migrations")]
        ),

        .target(
            name: "ActService",
            dependencies: [
                "ActThreads",
                "ActPlaybook",
                "ActEngine",
                "ActStore",
                "ActAMQP",
                "ActPostgres",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),

        .target(
            name: "ActHTTP",
            dependencies: [
                "ActService",
                "ActStore",
                "ActEngine",
                "ActPlaybook",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            resources: [.copy("Resources")]
        ),

        // MARK: Test support (only test targets import it)
        .target(
            name: "ActTesting",
            dependencies: [
                "ActPostgres",
                "ActAMQP",
                "ActPlaybook",
                "ActEngine",
                "ActStore",
                "ActService",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // MARK: The thread sanitizer's workout of ActThreads (scripts/test builds it with --sanitize=thread)
        .executableTarget(
            name: "ActThreadsStress",
            dependencies: ["ActThreads"]
        ),

        // MARK: The executable
        .executableTarget(
            name: "ActCLI",
            dependencies: [
                "ActPlaybook",
                "ActEngine",
                "ActPostgres",
                "ActAMQP",
                "ActStore",
                "ActService",
                "ActHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: The benchmark (its own executable; drives a real `hms-act serve` from outside)
        .executableTarget(
            name: "ActBench",
            dependencies: [
                "ActPlaybook",
                "ActEngine",
                "ActPostgres",
                "ActAMQP",
                "ActStore",
                "ActService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: Unit tests (no servers)
        .testTarget(
            name: "ActPlaybookTests",
            dependencies: ["ActPlaybook"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "ActEngineTests",
            dependencies: [
                "ActEngine",
                "ActPlaybook",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),

        .testTarget(
            name: "ActThreadsTests",
            dependencies: ["ActThreads"]
        ),

        .testTarget(
            name: "ActPostgresTests",
            dependencies: ["ActPostgres"]
        ),

        .testTarget(
            name: "ActAMQPTests",
            dependencies: ["ActAMQP"]
        ),

        .testTarget(
            name: "ActStoreTests",
            dependencies: ["ActStore", "ActPlaybook"]
        ),

        .testTarget(
            name: "ActServiceTests",
            dependencies: [
                "ActTesting", "ActService", "ActAMQP", "ActPostgres", "ActPlaybook", "ActEngine", "ActStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        .testTarget(
            name: "ActHTTPTests",
            dependencies: [
                "ActHTTP",
                "ActService",
                "ActPostgres",
                "ActStore",
                "ActEngine",
                "ActPlaybook",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),

        // MARK: Integration tests (real servers started by scripts/stack)
        .testTarget(
            name: "ActPostgresIntegrationTests",
            dependencies: ["ActPostgres", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "ActAMQPIntegrationTests",
            dependencies: ["ActAMQP", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "ActServiceIntegrationTests",
            dependencies: [
                "ActTesting",
                "ActService", "ActStore", "ActAMQP", "ActPostgres", "ActEngine", "ActPlaybook", "ActHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ActStoreIntegrationTests",
            dependencies: ["ActTesting", "ActStore", "ActPostgres", "ActEngine", "ActPlaybook"]
        ),
    ]
)

// MARK: Fuzz harnesses (scripts/fuzz), only when HMS_FUZZ=1
//
// libFuzzer drives each parser of outside input with mutated bytes under AddressSanitizer. They only link
// with `-sanitize=fuzzer` (libFuzzer provides the loop), so a plain `swift build` must not see them: they are
// declared when HMS_FUZZ=1, which scripts/fuzz sets for its own build folder (.build-fuzz). They are never part
// of the `hms-act` product.
if Context.environment["HMS_FUZZ"] == "1" {
    package.targets += [
        // Declares libFuzzer's LLVMFuzzerRunDriver, which each harness's @main calls (SwiftPM renames an
        // executable's entry point on Linux, so libFuzzer's own `main` is never linked).
        .target(name: "CLibFuzzerDriver", path: "Sources/Fuzz/CLibFuzzerDriver"),
        .executableTarget(
            name: "ActFuzzPlaybook",
            dependencies: ["ActPlaybook", "CLibFuzzerDriver"],
            path: "Sources/Fuzz/ActFuzzPlaybook"
        ),
        .executableTarget(
            name: "ActFuzzExpression",
            dependencies: ["ActPlaybook", "CLibFuzzerDriver"],
            path: "Sources/Fuzz/ActFuzzExpression"
        ),
        .executableTarget(
            name: "ActFuzzTriggerEvent",
            dependencies: ["ActService", "ActPlaybook", "CLibFuzzerDriver"],
            path: "Sources/Fuzz/ActFuzzTriggerEvent"
        ),
        .executableTarget(
            name: "ActFuzzWorkerMessage",
            dependencies: ["ActService", "ActPlaybook", "CLibFuzzerDriver"],
            path: "Sources/Fuzz/ActFuzzWorkerMessage"
        ),
    ]
}

// STANDARD SETTINGS: strict and uniform across every target (STYLE.md §3.11).
for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(contentsOf: [
        .swiftLanguageMode(.v6),
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
        .enableUpcomingFeature("InternalImportsByDefault"),
        .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
    ])
    target.swiftSettings = settings
}
