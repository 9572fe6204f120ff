import Foundation
import NudgeKafka
@testable import NudgePipeline
import Testing

/// An identity message that another instance must receive holds the offset of the event that caused it, as a
/// recommendation does: refused for good, the event stays uncommitted (read again after a restart) and the
/// instance reports a fault. Before, a link or a visitor's history sent across instances waited for no offset,
/// so the event committed and the link was lost.
@Suite("Identity messages hold their event's offset", .serialized)
struct IdentityDeliveryTests {
    /// Records what the group gave a plain member.
    private final class Assignment: RebalanceListener, @unchecked Sendable {
        // Sendable: `partitions` is behind the lock.
        let partitions = Locked<[TopicPartition]>([])
        func assigned(_ given: [TopicPartition]) { partitions.withLock { $0 += given } }
        func revoked(_ taken: [TopicPartition]) { partitions.withLock { $0.removeAll { taken.contains($0) } } }
    }

    @Test func aLinkRefusedForGoodHoldsItsEventAndIsAFault() async throws {
        let cluster = try KafkaMockCluster(brokers: 2, logger: testLogger)
        let topics = TopicNames()
        let group = "identity-held"
        try cluster.createTopics(topics, partitions: 2, outputPartitions: 1)
        // The identity topic alone on broker 2, which goes down: only identity messages fail.
        for topic in topics.subscribed {
            for p in Int32(0)..<2 { try cluster.setLeader(topic: topic, partition: p, broker: topic == topics.identity ? 2 : 1) }
        }
        for topic in topics.outputs { try cluster.setLeader(topic: topic, partition: 0, broker: 1) }
        try cluster.setGroupCoordinator(group, broker: 1)
        let session = ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"]

        var config = PipelineConfig.syntheticTime
        config.shards = 2
        config.groupId = group
        config.commitInterval = .milliseconds(200)
        config.drainTimeout = .seconds(2)
        let pipeline = try makePipeline(config, bootstrap: cluster.bootstrapServers,
                                        kafka: session.merging(["message.timeout.ms": "2000"]) { $1 })
        try pipeline.start()
        let joined = ContinuousClock.now + .seconds(120)
        while !pipeline.isReady && ContinuousClock.now < joined { try await Task.sleep(for: .milliseconds(50)) }
        try #require(pipeline.isReady)

        // Another member takes one partition of each topic (the range assignor), so that the visitor's id belongs
        // to another instance. It reads what it is given and commits nothing.
        let assignment = Assignment()
        let member = try KafkaConsumer(config: KafkaConfig(session.merging([
                                           "bootstrap.servers": cluster.bootstrapServers, "group.id": group,
                                           "partition.assignment.strategy": "range"]) { $1 }),
                                       logger: testLogger)
        member.setRebalanceListener(assignment)
        try member.subscribe(topics.subscribed)
        let leave = Locked(false)
        let polling = Thread {
            let buffer = UnsafeMutableBufferPointer<KafkaMessage>.allocate(capacity: 64)
            defer { buffer.deallocate() }
            while !leave.withLock({ $0 }) {
                for m in buffer.prefix(member.poll(into: buffer, timeout: .milliseconds(100))) { m.release() }
            }
            member.close()
        }
        polling.start()
        defer { leave.withLock { $0 = true } }
        var theirs: Int32?
        let memberJoined = ContinuousClock.now + .seconds(120)  // its own wait: the pipeline's may have used most of the first
        while theirs == nil && ContinuousClock.now < memberJoined {
            theirs = assignment.partitions.withLock { $0.first { $0.topic == topics.clickstream }?.partition }
            try await Task.sleep(for: .milliseconds(50))
        }
        let other = try #require(theirs, "the second member was given no partition")
        try await Task.sleep(for: .seconds(4))  // the pipeline's side of the rebalance

        func partition(_ id: String) -> Int32 { Array(id.utf8).withUnsafeBytes { KeyPartitioner.consistent.partition(of: $0, count: 2) } }
        let user = try #require((0..<100).map { "u-\($0)" }.first { partition($0) != other })
        let visitor = try #require((0..<100).map { "a-\($0)" }.first { partition($0) == other })
        try cluster.setBroker(2, up: false)
        try produceAll(bootstrap: cluster.bootstrapServers, [
            (topics.clickstream, user, track("Signed In", user: user, anonymous: visitor, id: "s-1", at: "2026-11-20T10:00:03.000Z")),
        ])

        let deadline = ContinuousClock.now + .seconds(30)
        while pipeline.fault == nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let fault = try #require(pipeline.fault, "the link to the visitor's instance was lost without a fault")
        #expect(fault.reason.hasPrefix("the dead letter or identity message caused by \(topics.clickstream)[\(partition(user))] offset 0"),
                "\(fault)")
        try await Task.sleep(for: .seconds(1))
        let after = try committedTotal(bootstrap: cluster.bootstrapServers, group: group, topic: topics.clickstream)
        #expect(after.committed == 0 && after.end == 1, "committed \(after.committed) of \(after.end) past a link that failed")
        #expect(timedStop(pipeline, within: .seconds(30)) != nil, "stop() hangs")
    }
}
