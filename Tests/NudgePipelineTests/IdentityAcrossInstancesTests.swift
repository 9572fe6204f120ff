import Foundation
import NudgeEvents
import NudgeFeatures
import NudgeKafka
import NudgePipeline
import Testing

/// Two instances in one group, each with one of two partitions: a visitor's events land on one instance, the
/// customer's on the other, and the identity topic carries the link, the history and later events across.
@Suite("Identity stitching across instances", .serialized)
struct IdentityAcrossInstancesTests {
    @Test func visitorOnOneInstanceBecomesCustomerOnTheOther() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        let topics = TopicNames()
        try cluster.createTopics(topics, partitions: 2, outputPartitions: 1)
        let bootstrap = cluster.bootstrapServers

        // A visitor and a customer whose keys land on different partitions (librdkafka's default partitioner).
        func partition(_ id: String) -> Int32 { Array(id.utf8).withUnsafeBytes { KeyPartitioner.consistent.partition(of: $0, count: 2) } }
        let user = "u-1"
        let visitor = try #require((0..<100).map { "a-\($0)" }.first { partition($0) != partition(user) })

        func start(_ name: String) throws -> Pipeline {
            var config = PipelineConfig.syntheticTime
            config.shards = 2
            config.groupId = "two-instances"
            config.instanceId = name
            config.commitInterval = .milliseconds(200)
            // A short session: the mock holds a rebalance for a joining member up to the session timeout
            // (librdkafka's default is 45 s), which is what the second instance's join waits for.
            let pipeline = try makePipeline(config, bootstrap: bootstrap, kafka: ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"])
            try pipeline.start()
            return pipeline
        }
        // One after the other, so the second join is always a rebalance of a settled group (bounded by the
        // short session). Started together, whether the second member made the mock's initial 3 s window
        // depended on load, and when it missed it the group took longer than the test waited.
        let first = try start("first")
        defer { first.stop() }
        let firstDeadline = ContinuousClock.now + .seconds(120)
        while !first.isReady && ContinuousClock.now < firstDeadline { try await Task.sleep(for: .milliseconds(50)) }
        try #require(first.isReady)
        let second = try start("second")
        defer { second.stop() }
        // Both in the group, with one partition each, before any event (state does not move on a rebalance).
        // The deadlines are generous: alongside the rest of the suite on two cores this test takes 55–97 s.
        let deadline = ContinuousClock.now + .seconds(120)
        while !(first.isReady && second.isReady) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        try #require(first.isReady && second.isReady)
        try await Task.sleep(for: .seconds(4))

        func view(_ id: String, _ n: Int, at second: Int) -> (topic: String, key: String, value: [UInt8]) {
            (topics.clickstream, id, track("Product Viewed", user: nil, anonymous: id, id: "v-\(n)", at: "2026-11-20T10:00:\(String(format: "%02d", second)).000Z",
                                           properties: #"{"product_id":"p-1","price":20.0}"#))
        }
        try produceAll(bootstrap: bootstrap, [view(visitor, 1, at: 1), view(visitor, 2, at: 2)])
        try produceAll(bootstrap: bootstrap, [
            (topics.clickstream, user, track("Signed In", user: user, anonymous: visitor, id: "s-1", at: "2026-11-20T10:00:03.000Z")),
        ])

        let at = Array("2026-11-20T10:01:00.000Z".utf8).withUnsafeBytes { ISO8601Time.parseMillis($0) } ?? 0
        func views(_ id: String) async throws -> Double? {
            for pipeline in [first, second] {
                if let snapshot = try await pipeline.inspect(customer: id, atMillis: at) {
                    return snapshot.features.first { $0.name == "views_24h" }?.value
                }
            }
            return nil
        }
        func waitFor(_ id: String, views expected: Double) async throws -> Bool {
            let until = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < until {
                if try await views(id) == expected { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
        // What each instance answers for the visitor's id.
        func visitorAnswers() async -> [Result<CustomerSnapshot?, InspectionError>] {
            var answers: [Result<CustomerSnapshot?, InspectionError>] = []
            for pipeline in [first, second] {
                do throws(InspectionError) { answers.append(.success(try await pipeline.inspect(customer: visitor, atMillis: at))) } catch {
                    answers.append(.failure(error))
                }
            }
            return answers
        }
        // The visitor's two views moved to the customer's instance, and the visitor is gone from its own,
        // which names the customer the id is linked to.
        let merged = try await waitFor(user, views: 2)
        #expect(merged, "the customer's views should count the visitor's two")
        let visitorLeft = await visitorAnswers()
        #expect(visitorLeft.contains(.failure(.linkedElsewhere(anonymousId: visitor, customer: user))), "\(visitorLeft)")
        #expect(visitorLeft.contains(.success(nil)), "\(visitorLeft)")

        // A later anonymous view (logged out on the same device) lands in the customer, across instances.
        try produceAll(bootstrap: bootstrap, [view(visitor, 3, at: 30)])
        let relayed = try await waitFor(user, views: 3)
        #expect(relayed, "the later anonymous view should reach the customer")
        let visitorAfter = await visitorAnswers()
        #expect(visitorAfter == visitorLeft, "no store holds the visitor: \(visitorAfter)")
        // It went through the identity topic: the link (to the visitor's instance), the history (to the
        // customer's), the later view (relayed to the customer's).
        let crossed = try readAll(bootstrap: bootstrap, topics: [topics.identity], timeout: .seconds(10)) { $0.count >= 3 }
        #expect(crossed.map(\.key).sorted() == [visitor, user, user].sorted())
        // The relayed view carries where it was read, for a dead letter on the customer's instance.
        let relayedView = crossed.filter { $0.headers["x-source-topic"] != nil }
        #expect(relayedView.count == 1)
        #expect(relayedView.first?.key == user)
        #expect(relayedView.first?.headers["x-source-topic"] == topics.clickstream)
        #expect(relayedView.first?.headers["x-source-key"] == visitor)
        #expect(relayedView.first?.headers["x-event-time"] == "on_time", "its time judged where it was read")

        // Each offset waited for the identity messages it caused, and finished once they were delivered: the
        // group commits every event and every identity message.
        for topic in [topics.clickstream, topics.identity] {
            let until = ContinuousClock.now + .seconds(20)
            var done = try committedTotal(bootstrap: bootstrap, group: "two-instances", topic: topic)
            while done.committed < done.end && ContinuousClock.now < until {
                try await Task.sleep(for: .milliseconds(200))
                done = try committedTotal(bootstrap: bootstrap, group: "two-instances", topic: topic)
            }
            #expect(done.committed == done.end, "\(topic): committed \(done.committed) of \(done.end)")
        }
    }
}
