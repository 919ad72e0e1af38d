// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Trellis",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Trellis", targets: ["Trellis"]),
        .executable(name: "trellis", targets: ["TrellisCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // Layer 0: Lua 5.4 from the system (Debian: liblua5.4-dev) and the C that longjmp demands.
        .systemLibrary(
            name: "CLua",
            path: "Sources/CLua",
            pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"])]
        ),
        .target(name: "CLuaShim", dependencies: ["CLua"]),

        // Layer 1: the value model, MessagePack and framing.
        .target(name: "TrellisWire", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),

        // Layer 2: the Lua host (confined VMs, sandbox, limits, value bridge).
        .target(name: "TrellisLua", dependencies: ["CLuaShim", "TrellisWire"]),

        // Layer 3: membership (pure cores: failure detector, overlay driver).
        .target(name: "TrellisMembership", dependencies: ["TrellisWire", "TrellisLua"]),

        // Layer 3: placement (shard tables per capability, computed by placement scripts).
        .target(name: "TrellisPlacement", dependencies: ["TrellisWire", "TrellisLua"]),

        // Layer 3: fault injection (rules and scripts that drop, delay, duplicate or reorder
        // messages); the node and the simulator both apply them.
        .target(name: "TrellisFaults", dependencies: ["TrellisWire", "TrellisLua"]),

        // Layer 3: the deterministic simulator (the membership core on an in-memory network).
        .target(name: "TrellisSimulator", dependencies: ["TrellisMembership", "TrellisFaults", "TrellisLua", "TrellisWire"]),

        // Layer 3: transport over SwiftNIO (handshake, channels, coalesced writes, reconnect).
        .target(
            name: "TrellisTransport",
            dependencies: [
                "TrellisWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),

        // Layer 3: discovery (static lists, DNS A/AAAA/SRV over UDP and TCP, authenticated
        // multicast gossip) and the driver that feeds what it finds to the overlay's `join`.
        .target(
            name: "TrellisDiscovery",
            dependencies: [
                "TrellisWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Layer 4: the node (NIO shell around the membership core) and its public API.
        .target(
            name: "Trellis",
            dependencies: [
                "TrellisWire", "TrellisLua", "TrellisMembership", "TrellisPlacement", "TrellisFaults", "TrellisTransport",
                "TrellisDiscovery",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),

        // Layer 5: topology files and the runner behind `trellis up`.
        .target(
            name: "TrellisTopology",
            dependencies: [
                "Trellis", "TrellisWire", "TrellisLua", "TrellisMembership", "TrellisFaults", "TrellisSimulator",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Layer 6: the `trellis` command and the benchmarks.
        .executableTarget(
            name: "TrellisCLI",
            dependencies: [
                "Trellis", "TrellisTopology", "TrellisWire", "TrellisLua",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "TrellisBench",
            dependencies: [
                "Trellis", "TrellisWire", "TrellisLua", "TrellisPlacement", "TrellisFaults", "TrellisTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),

        .testTarget(name: "TrellisWireTests", dependencies: ["TrellisWire"]),
        .testTarget(name: "TrellisLuaTests", dependencies: ["TrellisLua"], exclude: ["HostileScripts"]),
        .testTarget(
            name: "TrellisMembershipTests", dependencies: ["TrellisMembership", "TrellisSimulator", "TrellisFaults"],
            exclude: ["HostileMigrateScripts"]
        ),
        .testTarget(name: "TrellisFaultsTests", dependencies: ["TrellisFaults", "TrellisLua", "TrellisWire"]),
        .testTarget(name: "TrellisPlacementTests", dependencies: ["TrellisPlacement", "TrellisLua", "TrellisWire"]),
        .testTarget(
            name: "TrellisTransportTests",
            dependencies: [
                "TrellisTransport", .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            exclude: ["Certificates"]
        ),
        .testTarget(name: "TrellisTopologyTests", dependencies: ["TrellisTopology"]),
        // Helpers the test targets share: child processes that get signals, a private dnsmasq.
        .target(name: "TrellisTestSupport", path: "Tests/TrellisTestSupport"),
        .testTarget(
            name: "TrellisDiscoveryTests",
            dependencies: [
                "TrellisDiscovery", "Trellis", "TrellisWire", "TrellisTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TrellisIntegrationTests",
            dependencies: [
                "Trellis", "TrellisTopology", "TrellisLua", "TrellisWire", "TrellisTransport", "TrellisMembership",
                "TrellisTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
    ]
)
