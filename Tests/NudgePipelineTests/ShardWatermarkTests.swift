@testable import NudgePipeline
import Testing

/// A shard's partition clocks across rebalances: slots are reused for other partitions.
@Suite struct ShardWatermarkTests {
    @Test func aReusedSlotDoesNotInheritARevokedPartitionsClock() {
        var clock = ShardWatermark(allowedLatenessMillis: 0, idleTimeoutMillis: 10_000)
        clock.advance(wallMillis: 0)
        clock.assign(partition: 0, epoch: 1)
        clock.assign(partition: 5, epoch: 2)
        clock.observe(partition: 0, eventMillis: t0)
        clock.observe(partition: 5, eventMillis: t0 + hour)
        clock.revoke(partition: 5)
        // A message of the revoked partition still in flight, then the slot given to another partition.
        clock.observe(partition: 5, eventMillis: t0 + hour)
        clock.assign(partition: 5, epoch: 3)
        clock.observe(partition: 0, eventMillis: t0 + 2 * hour)
        clock.advance(wallMillis: 1_000)
        #expect(clock.millis == .min, "the new partition, silent so far, holds the watermark: it moved to t0 + \(clock.millis - t0) ms")
        clock.observe(partition: 5, eventMillis: t0 + 30 * minute)
        clock.advance(wallMillis: 2_000)
        #expect(clock.millis == t0 + 30 * minute)
    }

    @Test func messagesAheadOfTheirAssignmentCount() {
        var clock = ShardWatermark(allowedLatenessMillis: 0, idleTimeoutMillis: 10_000)
        clock.advance(wallMillis: 0)
        // The shard hears of slot 3's assignment after its first messages: they are kept.
        clock.observe(partition: 3, eventMillis: t0)
        clock.assign(partition: 3, epoch: 1)
        clock.advance(wallMillis: 1_000)
        #expect(clock.millis == t0)
        #expect(clock.epoch(of: 3) == 1)
    }
}
