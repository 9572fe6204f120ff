import Foundation
import NudgeEvents
import NudgeFeatures
import NudgeKafka
import NudgePipeline
import NudgeTraffic
import NudgeTraining
import Testing

/// Training-serving parity: what `nudge dataset` writes for a customer at cutoff T is what the service
/// would have read for that customer at T, bit for bit.
@Suite("Live features equal the point-in-time dataset's", .serialized)
struct FeatureParityTests {
    static let day: Int64 = 86_400_000
    static let customers = 300

    /// One generated Kafka message, copied out of the generator's buffers.
    struct Message {
        var key: [UInt8]
        var value: [UInt8]
    }

    /// Where the dataset took snapshots: the messages before the one that passed the cutoffs, and the
    /// cutoffs snapshotted there (one event can pass several).
    struct SnapshotPoint {
        var messagesBefore: Int
        var cutoffs: [Int64]
    }

    /// A seeded stream of about ten weeks (30,000 messages): 300 customers, late (out-of-order) events, byte-identical
    /// duplicates and malformed messages among them.
    static func stream() -> [Message] {
        var traffic = TrafficConfig()
        traffic.seed = 20_260_921
        traffic.customers = customers
        traffic.meanGapMillis = TrafficConfig.suggestedMeanGapMillis(customers: customers)
        traffic.outOfOrderRate = 0.05
        traffic.duplicateRate = 0.01
        traffic.malformedRate = 0.005
        let generator = TrafficGenerator(traffic)
        return (0..<30_000).map { _ in
            let message = generator.next()
            return Message(key: Array(message.key), value: Array(message.value))
        }
    }

    /// Features that read generated properties by name (`properties.<key>`), beside the shipped ones: both
    /// sides decode them from the same JSON.
    static let byName: [FeatureDefinition] = [
        FeatureDefinition(name: "quantity_7d", filter: .kinds(.productAdded, .productRemoved), aggregation: .sum(.property("quantity")),
                          window: .days(7)),
        FeatureDefinition(name: "max_price_90d", filter: .kinds(.productViewed), aggregation: .maximum(.property("price")),
                          window: .days(90), missingValue: -1),
        FeatureDefinition(name: "euro_events_30d", filter: EventFilter(kinds: Set(EventKind.allCases), conditions: [.textIn(.property("currency"), ["EUR"])]),
                          aggregation: .count, window: .days(30)),
        FeatureDefinition(name: "currencies", filter: .anyEvent, aggregation: .distinctCount(.property("currency"))),
        // Keys Nudge does not read on its own.
        FeatureDefinition(name: "garden_kitchen_pages_30d",
                          filter: EventFilter(kinds: [.page], conditions: [.textIn(.property("path"), ["/c/garden", "/c/kitchen"])]),
                          aggregation: .count, window: .days(30)),
        FeatureDefinition(name: "trouble_reasons", filter: .kinds(.complaintFiled, .orderRefunded, .orderCancelled),
                          aggregation: .distinctCount(.property("reason"))),
    ]

    @Test func liveFeaturesEqualTheDatasetForEveryCustomerAndCutoff() async throws {
        // The shipped definitions: all 34 features (windows, lifetime, distinct counts, gauges, expressions),
        // then six that read properties by name.
        let shipped = try FeatureSet.load(file: repoModels + "/features.json")
        #expect(shipped.count == 34)
        let features = try FeatureSet(shipped.definitions + Self.byName)
        let messages = Self.stream()

        // The offline side, as `nudge dataset` runs it. Labels are not compared, so no horizon (every
        // cutoff is kept), and an active window longer than the stream (every known customer has a row).
        let firstCutoff = TrafficConfig().startMillis + 7 * Self.day + 5 * 3_600_000
        let cutoffEvery = 7 * Self.day
        var datasetConfig = DatasetConfig()
        datasetConfig.features = features
        datasetConfig.firstCutoffMillis = firstCutoff
        datasetConfig.cutoffEveryMillis = cutoffEvery
        datasetConfig.horizonMillis = 0
        datasetConfig.activeWindowMillis = 365 * Self.day
        let builder = PointInTimeDatasetBuilder(config: datasetConfig)
        var points: [SnapshotPoint] = []
        for (index, message) in messages.enumerated() {
            let before = builder.cutoffsTaken
            message.value.withUnsafeBytes { builder.consume($0) }
            // The snapshot happens inside this consume, before this message applies.
            let cutoffs = (before..<builder.cutoffsTaken).map { firstCutoff + Int64($0) * cutoffEvery }
            if !cutoffs.isEmpty { points.append(SnapshotPoint(messagesBefore: index, cutoffs: cutoffs)) }
        }
        let dataset = builder.finish()
        let stats = dataset.statistics
        #expect(stats.outOfOrder > 0 && stats.duplicates > 0 && stats.malformed > 0 && stats.missedBySnapshot > 0,
                "the stream should exercise late, duplicate and malformed input: \(stats)")
        #expect(points.flatMap(\.cutoffs).count >= 5, "\(points.count) snapshot points")
        var rows: [Int64: [String: ChurnRow]] = [:]
        for row in dataset.churnRows { rows[row.cutoffMillis, default: [:]][row.customerId] = row }
        // The properties were read: the by-name features are not all at their missing values.
        for definition in Self.byName {
            guard let index = features.index(of: definition.name) else { continue }
            #expect(dataset.churnRows.contains { $0.features[index] != definition.missingValue }, "\(definition.name) never read a property")
        }

        // The live side. Every message goes to ONE single-partition topic, in the generator's order: Kafka
        // orders a partition, not several, so with the contract's three input topics (or more partitions)
        // the pipeline could apply a customer's events in another order than the file's, and an
        // out-of-order event or a gauge (open tickets, cart items) would then legitimately differ. The
        // pipeline accepts any event on any input topic, so this changes nothing else.
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        let topics = TopicNames()
        try cluster.createTopics(topics, partitions: 1, outputPartitions: 1)
        var config = PipelineConfig.syntheticTime
        // One shard: it sees the partition in order, as the replay does. With more, an identity link's anonymous
        // history reaches the customer's shard after whatever of theirs that shard applied meanwhile, so
        // arrival-order aggregates (open and net counts) and Float32 bucket sums could differ around a link
        // (IdentityStitchingTests compares shards with one shard, order-free features exactly).
        config.shards = 1
        config.groupId = "parity"
        config.commitInterval = .milliseconds(200)
        let pipeline = try makePipeline(config, bootstrap: cluster.bootstrapServers, features: features)
        try pipeline.start()
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": cluster.bootstrapServers]), logger: testLogger) { _ in }
        let topic = producer.topic(topics.clickstream)
        defer {
            producer.close()
            pipeline.stop()
        }

        var produced = 0
        var compared = 0
        var mismatches: [String] = []
        for point in points {
            // Everything the dataset had applied when it snapshotted, and not the message that passed T.
            while produced < point.messagesBefore {
                try producer.send(to: topic, key: messages[produced].key, value: messages[produced].value, token: 0)
                produced += 1
            }
            #expect(producer.flush(timeout: .seconds(20)) == 0)
            let handled = await waitUntilHandled(pipeline, produced)
            try #require(handled, "pipeline handled \(pipeline.eventsHandled) of \(produced) messages")

            for cutoff in point.cutoffs {
                let expected = rows[cutoff] ?? [:]
                var live = Set<String>()
                for number in 1...Self.customers {
                    let customer = "c-\(number)"
                    guard let snapshot = try await pipeline.inspect(customer: customer, atMillis: cutoff) else { continue }
                    live.insert(customer)
                    guard let row = expected[customer] else { continue }  // reported by the set comparison below
                    compared += 1
                    if snapshot.evaluatedAtMillis != cutoff {
                        mismatches.append("\(customer) at \(ISO8601Time.format(millis: cutoff)): evaluated at \(ISO8601Time.format(millis: snapshot.evaluatedAtMillis))")
                    }
                    guard snapshot.features.map(\.name) == dataset.featureNames, row.features.count == dataset.featureNames.count else {
                        mismatches.append("\(customer): live features \(snapshot.features.map(\.name)), dataset \(dataset.featureNames)")
                        continue
                    }
                    for (feature, offline) in zip(snapshot.features, row.features) {
                        // Bit for bit (so 0 and -0 differ), but any NaN equals any NaN.
                        let same = feature.value.bitPattern == offline.bitPattern || (feature.value.isNaN && offline.isNaN)
                        if !same {
                            mismatches.append("\(customer) at \(ISO8601Time.format(millis: cutoff)): \(feature.name) live \(feature.value), dataset \(offline)")
                        }
                    }
                }
                // Known customers (seen with a userId) both sides: the dataset rows every one of them here.
                if live != Set(expected.keys) {
                    Issue.record("""
                        known customers differ at \(ISO8601Time.format(millis: cutoff)): live only \
                        \(live.subtracting(expected.keys).sorted().prefix(10)), dataset only \
                        \(Set(expected.keys).subtracting(live).sorted().prefix(10))
                        """)
                }
            }
        }
        if !mismatches.isEmpty {
            Issue.record("\(mismatches.count) live values differ from the dataset's; the first:\n\(mismatches.prefix(15).joined(separator: "\n"))")
        }
        #expect(compared >= 2_000, "only \(compared) customer snapshots compared")
    }
}
