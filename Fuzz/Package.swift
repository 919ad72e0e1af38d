// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for Trellis's wire decoders; `scripts/fuzz` builds and runs them.
//
// TrellisWire and TrellisTransport are not products of the root package, so this package
// compiles their sources itself through the symlinks in Sources/: their dependencies below
// must match the root Package.swift's ("no such module" here means they no longer do).
//
// FuzzChecks/FuzzCorpusTests.swift is a symlink to Tests/TrellisTransportTests/: with
// TRELLIS_FUZZ defined it is only the property checks, so the fuzzers and the corpus test
// in `swift test` check exactly the same properties.
let package = Package(
    name: "TrellisFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [
        .target(name: "TrellisWire", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .target(
            name: "TrellisTransport",
            dependencies: [
                "TrellisWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            // FrameCodec and Handshake are internal: FuzzChecks reaches them with @testable.
            swiftSettings: [.unsafeFlags(["-enable-testing"])]
        ),
        .target(
            name: "FuzzChecks",
            dependencies: [
                "TrellisWire", "TrellisTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: [.define("TRELLIS_FUZZ")]
        ),
        .executableTarget(name: "FuzzValue", dependencies: ["FuzzChecks"]),
        .executableTarget(name: "FuzzFrame", dependencies: ["FuzzChecks"]),
        .executableTarget(name: "FuzzHandshake", dependencies: ["FuzzChecks"]),
    ]
)
