import NudgeKafka
import Testing

@testable import NudgePipeline

@Suite struct TrackerTableTests {
    /// A revoked partition whose messages are still in flight keeps its tracker (late completions land on
    /// it) until they have all finished; then a sweep frees the index for the next partition.
    @Test func retiredIndexIsFreedOnceItsMessagesFinish() throws {
        let table = TrackerTable()
        let busy = OffsetTracker(partition: TopicPartition("in", 0), window: 64)
        let index = try #require(table.add(busy))
        for offset in 0..<Int64(10) { #expect(busy.register(offset: offset, arrivalNanos: 0)) }
        for offset in 0..<Int64(5) { busy.complete(offset: offset) }

        table.retire(index)
        #expect(table[index] === busy)
        #expect(table.retired == [index])
        table.sweepRetired()
        #expect(table[index] === busy, "half its messages are still in flight")
        let other = try #require(table.add(OffsetTracker(partition: TopicPartition("in", 1), window: 64)))
        #expect(other != index)

        for offset in 5..<Int64(10) { busy.complete(offset: offset) }
        table.sweepRetired()
        #expect(table[index] == nil)
        #expect(table.retired.isEmpty)
        #expect(table.active[index] == nil)
        let reused = try #require(table.add(OffsetTracker(partition: TopicPartition("in", 2), window: 64)))
        #expect(reused == index)
    }

    /// A revoked partition with nothing in flight is freed at once.
    @Test func idleIndexIsFreedAtOnce() throws {
        let table = TrackerTable()
        let idle = OffsetTracker(partition: TopicPartition("in", 0), window: 64)
        let index = try #require(table.add(idle))
        #expect(idle.register(offset: 0, arrivalNanos: 0))
        idle.complete(offset: 0)
        idle.advance()
        table.retire(index)
        #expect(table[index] == nil)
        #expect(table.retired.isEmpty)
    }
}

/// A partition's window of offsets in flight.
@Suite struct OffsetTrackerTests {
    /// Retention, compaction or an aborted transaction can skip more offsets than the window holds.
    @Test func aSkipWiderThanTheWindowRegistersOnceEverythingBeforeItFinished() {
        let tracker = OffsetTracker(partition: TopicPartition("in", 0), window: 1_024)
        #expect(tracker.register(offset: 0, arrivalNanos: 0))
        #expect(tracker.register(offset: 1, arrivalNanos: 0))
        tracker.complete(offset: 0)
        tracker.advance()
        // Offset 1 is still in flight: the skip waits for it.
        #expect(!tracker.register(offset: 5_000, arrivalNanos: 0))
        tracker.complete(offset: 1)
        tracker.advance()
        #expect(tracker.register(offset: 5_000, arrivalNanos: 7))
        #expect(tracker.committable.load(ordering: .relaxed) == 5_000, "the skipped offsets count as finished")
        #expect(tracker.pending == 1)
        #expect(tracker.arrivalNanos(offset: 5_000) == 7)
        #expect(tracker.register(offset: 5_001, arrivalNanos: 0))
        tracker.complete(offset: 5_001)
        tracker.advance()
        #expect(tracker.committable.load(ordering: .relaxed) == 5_000, "5,000 itself is not finished")
        tracker.complete(offset: 5_000)
        tracker.advance()
        #expect(tracker.committable.load(ordering: .relaxed) == 5_002)
    }

    @Test func aFullWindowStillWaits() {
        let tracker = OffsetTracker(partition: TopicPartition("in", 0), window: 4)
        for offset in 0..<4 as Range<Int64> { #expect(tracker.register(offset: offset, arrivalNanos: 0)) }
        #expect(!tracker.register(offset: 4, arrivalNanos: 0), "0 is not finished")
        tracker.complete(offset: 0)
        tracker.advance()
        #expect(tracker.register(offset: 4, arrivalNanos: 0))
    }
}
