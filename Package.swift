// swift-tools-version:6.3
import PackageDescription

let package = Package(
    name: "loadshear",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "loadshear", targets: ["loadshear"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // One trait, named: with WasmKit's three default traits, SwiftPM passes their -D flags in
        // a different order in each invocation, so `swift test` after `swift build` (or the
        // other way round) rebuilt WasmKit and everything above it (80 s on two cores).
        // MultiThread is the one we need: shards run guests on several threads.
        .package(url: "https://github.com/swiftwasm/WasmKit", from: "0.4.2", traits: ["MultiThread"]),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/ordo-one/malloc-interposer", from: "1.6.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .executableTarget(name: "loadshear", dependencies: ["LoadshearCommands"]),
        // Counts the allocations of the recording paths (the test and bench/record.sh run it
        // with the interposer preloaded); not part of the shipped binary.
        .executableTarget(
            name: "loadshear-allocations",
            dependencies: [
                "LoadshearMetrics",
                "LoadshearHandlers",
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ]
        ),
        .target(
            name: "LoadshearCommands",
            dependencies: [
                "LoadshearScript", "LoadshearEngine", "LoadshearHandlers", "LoadshearMetrics", "LoadshearTargets",
                "LoadshearDashboard",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(name: "LoadshearScript"),
        .target(
            name: "LoadshearHandlers",
            dependencies: [
                "LoadshearScript",
                .product(name: "WasmKit", package: "WasmKit"),
            ],
            // Every guest call passes the handler's stack and argument arrays (class properties)
            // inout, and each such access is checked at run time for overlap: 6.6% of a frame's
            // instructions on the original contract, 4.2% on the fast path (callgrind, release).
            // A handler is confined to its shard's loop; debug builds (the tests) keep checking.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        .target(
            name: "LoadshearMetrics",
            dependencies: [.product(name: "Histogram", package: "hdrhistogram-swift")]
        ),
        .target(name: "LoadshearDashboard", dependencies: ["LoadshearMetrics"]),
        .target(
            name: "LoadshearEngine",
            dependencies: [
                "LoadshearScript", "LoadshearHandlers", "LoadshearMetrics",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
        .target(
            name: "LoadshearTargets",
            dependencies: [
                "LoadshearMetrics",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // Also the self-signed certificate of `target --tls`, made with its BoringSSL.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
        // Shared by the test targets: independent servers, async waiting, workspaces.
        .target(
            name: "LoadshearTestSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/LoadshearTestSupport"
        ),
        .testTarget(name: "LoadshearScriptTests", dependencies: ["LoadshearScript", "LoadshearTestSupport"]),
        .testTarget(
            name: "LoadshearEngineTests",
            dependencies: [
                "LoadshearEngine", "LoadshearScript", "LoadshearTargets", "LoadshearMetrics", "LoadshearHandlers",
                "LoadshearTestSupport",
                .product(name: "WAT", package: "WasmKit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LoadshearHandlersTests",
            dependencies: [
                "LoadshearHandlers", "LoadshearScript", "LoadshearTestSupport",
                .product(name: "WAT", package: "WasmKit"),
            ]
        ),
        .testTarget(
            name: "LoadshearTargetsTests",
            dependencies: [
                "LoadshearTargets", "LoadshearTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LoadshearCommandsTests",
            dependencies: [
                "LoadshearCommands", "LoadshearScript", "LoadshearTestSupport",
                .product(name: "Yams", package: "Yams"),
                .product(name: "WAT", package: "WasmKit"),
            ]
        ),
        .testTarget(
            name: "LoadshearMetricsTests",
            dependencies: [
                "LoadshearMetrics", "LoadshearDashboard", "LoadshearTestSupport",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
    ]
)
