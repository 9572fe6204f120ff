// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "nudge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "nudge", targets: ["NudgeCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        // C libraries, found through pkg-config (librdkafka-dev, liblz4-dev).
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka",
                       providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4",
                       providers: [.apt(["liblz4-dev"])]),

        // Cache prefetch hints (one inline function each): Swift has no prefetch intrinsic.
        .target(name: "CPrefetch"),

        // Kafka: a Swift-shaped binding over librdkafka and its mock cluster.
        .target(name: "NudgeKafka",
                dependencies: [
                    "CRdKafka",
                    "CPrefetch",
                    .product(name: "Atomics", package: "swift-atomics"),
                    .product(name: "Logging", package: "swift-log"),
                ],
                swiftSettings: strict),
        // JSON: the located JSON reader of feature and model files (offsets, number literals, repeated keys kept).
        .target(name: "NudgeJSON", swiftSettings: strict),
        // Events: Segment-spec decoding and the dead-letter taxonomy.
        .target(name: "NudgeEvents", swiftSettings: strict),
        // Features: windowed per-customer features and the sharded store.
        .target(name: "NudgeFeatures",
                dependencies: ["NudgeEvents", "NudgeJSON", "CLZ4", "CPrefetch", .product(name: "Atomics", package: "swift-atomics")],
                swiftSettings: strict),
        // Models: model files, validation and logistic scoring.
        .target(name: "NudgeModels", dependencies: ["NudgeJSON"], swiftSettings: strict),
        // Decisions: eligibility, contact policy, action choice, recommendation JSON.
        .target(name: "NudgeDecisions",
                dependencies: ["NudgeModels", "NudgeEvents"],
                swiftSettings: strict),
        // Traffic: a seeded generator of realistic omnichannel Segment traffic.
        .target(name: "NudgeTraffic", dependencies: ["NudgeEvents"], swiftSettings: strict),
        // Training: point-in-time datasets by replaying history through the live feature code,
        // logistic regression, reports.
        .target(name: "NudgeTraining",
                dependencies: ["NudgeEvents", "NudgeFeatures", "NudgeJSON", "NudgeModels", "NudgeDecisions"],
                swiftSettings: strict),
        // Pipeline: Kafka in, store, score, decide, Kafka out; metrics.
        .target(name: "NudgePipeline",
                dependencies: [
                    "NudgeKafka", "NudgeEvents", "NudgeFeatures", "NudgeModels", "NudgeDecisions", "CPrefetch",
                    .product(name: "Atomics", package: "swift-atomics"),
                    .product(name: "DequeModule", package: "swift-collections"),
                    .product(name: "Histogram", package: "hdrhistogram-swift"),
                    .product(name: "Logging", package: "swift-log"),
                ],
                swiftSettings: strict),
        // The `nudge` command.
        .executableTarget(name: "NudgeCLI",
                          dependencies: [
                              "NudgePipeline", "NudgeTraffic", "NudgeTraining",
                              .product(name: "ArgumentParser", package: "swift-argument-parser"),
                              .product(name: "Logging", package: "swift-log"),
                              .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                              .product(name: "FlyingFox", package: "FlyingFox"),
                              .product(name: "FlyingSocks", package: "FlyingFox"),
                          ],
                          swiftSettings: strict,
                          // jemalloc for the service's malloc: shards free the messages librdkafka allocated
                          // on its threads, which contends on glibc's arena locks. End to end 0.37 → 0.52 M
                          // messages/s, 4.6 → 3.6 CPU-seconds per million (README, Benchmarks).
                          linkerSettings: [.linkedLibrary("jemalloc")]),

        .testTarget(name: "NudgeKafkaTests", dependencies: ["NudgeKafka"], swiftSettings: strict),
        .testTarget(name: "NudgeJSONTests", dependencies: ["NudgeJSON"], swiftSettings: strict),
        .testTarget(name: "NudgeEventsTests", dependencies: ["NudgeEvents", "NudgeTraffic"], swiftSettings: strict),
        .testTarget(name: "NudgeFeaturesTests", dependencies: ["NudgeFeatures", "NudgeTraffic"], swiftSettings: strict),
        .testTarget(name: "NudgeModelsTests", dependencies: ["NudgeModels"], swiftSettings: strict),
        .testTarget(name: "NudgeDecisionsTests", dependencies: ["NudgeDecisions"], swiftSettings: strict),
        .testTarget(name: "NudgeTrafficTests", dependencies: ["NudgeTraffic", "NudgeEvents"], swiftSettings: strict),
        .testTarget(name: "NudgeTrainingTests", dependencies: ["NudgeTraining", "NudgeTraffic"], swiftSettings: strict),
        .testTarget(name: "NudgePipelineTests",
                    dependencies: ["NudgePipeline", "NudgeTraffic", "NudgeKafka", "NudgeTraining"],
                    swiftSettings: strict),
    ]
)
