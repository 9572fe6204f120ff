import Logging
import Testing

@testable import NudgeKafka
@testable import NudgePipeline

@Suite struct TrackerTableTests {
    /// A revoked partition whose messages are still in flight keeps its tracker (late completions land on
    /// it) until they have all finished; then a sweep frees the index for the next partition.
    @Test func retiredIndexIsFreedOnceItsMessagesFinish() throws {
        let table = TrackerTable()
        let busy = OffsetTracker(partition: TopicPartition("in", 0), window: 64)
        let index = try #require(table.add(busy))
        for offset in 0..<Int64(10) { #expect(busy.register(offset: offset, arrivalNanos: 0) == .registered) }
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
        #expect(idle.register(offset: 0, arrivalNanos: 0) == .registered)
        idle.complete(offset: 0)
        idle.advance()
        table.retire(index)
        #expect(table[index] == nil)
        #expect(table.retired.isEmpty)
    }
}

/// What a delivery that failed for good does to its offset: while its partition is ours it holds the partition
/// back (a fault, `/health` 503); once the partition is revoked its next owner reads it again, so it finishes.
@Suite struct RefusedOutputTests {
    private func recorder() throws -> (MetricsRecorder, FaultRecorder) {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let faults = FaultRecorder(logger: logger)
        let metrics = MetricsRecorder(config: PipelineConfig(),
                                      models: ModelStore(try ModelSet.load(directory: repoModels, features: repoFeatures)),
                                      counterNames: (CounterNames(capacity: 64, reserved: ["none"]), CounterNames(capacity: 16)),
                                      faults: faults)
        return (metrics, faults)
    }

    /// Offsets 0 to 2 in flight on a tracked partition; offsets 0 and 2 delivered.
    private func partitionWaitingOnOffset1() throws -> (TrackerTable, Int, OffsetTracker) {
        let table = TrackerTable()
        let tracker = OffsetTracker(partition: TopicPartition("in", 0), window: 64)
        let index = try #require(table.add(tracker))
        for offset in 0..<Int64(3) { #expect(tracker.register(offset: offset, arrivalNanos: 0) == .registered) }
        tracker.complete(offset: 0)
        tracker.complete(offset: 2)
        return (table, index, tracker)
    }

    private func refused(_ index: Int, offset: Int64) -> [DeliveryReport] {
        [DeliveryReport(token: DeliveryToken.make(tracker: index, offset: offset, recommendation: true),
                        error: KafkaError(code: 1, "Broker: Offset out of range"), partition: -1, offset: -1)]
    }

    @Test func onAPartitionStillOursItIsAFaultAndTheOffsetStaysUnfinished() throws {
        let (metrics, faults) = try recorder()
        let (table, index, tracker) = try partitionWaitingOnOffset1()
        refused(index, offset: 1).withUnsafeBufferPointer { metrics.delivered($0, trackers: table) }
        tracker.advance()
        #expect(tracker.committable.load(ordering: .relaxed) == 1)
        #expect(tracker.pending == 2)
        #expect(faults.current?.reason.contains("in[0] offset 1 was refused for good") == true)
    }

    /// The rule a refused delivery and a send the producer would not take share: a fault while the
    /// partition is ours (the offset stays unfinished), the offset finished once it is revoked, nothing for
    /// an output no offset waits for.
    @Test func aLostOutputIsAFaultOnlyWhileItsPartitionIsOurs() throws {
        let (table, index, tracker) = try partitionWaitingOnOffset1()
        #expect(tracker.register(offset: 3, arrivalNanos: 0) == .registered)
        #expect(table.outputLost(token: DeliveryToken.none) == nil)
        let lost = try #require(table.outputLost(token: DeliveryToken.make(tracker: index, offset: 1, recommendation: false)))
        #expect(lost.partition == TopicPartition("in", 0) && lost.offset == 1)
        tracker.advance()
        #expect(tracker.pending == 3, "still ours: offset 1 stays unfinished")
        tracker.beginGivingUp()
        #expect(table.outputLost(token: DeliveryToken.make(tracker: index, offset: 3, recommendation: false)) == nil,
                "being given up: no fault")
        tracker.finishRevocation()
        tracker.advance()
        #expect(tracker.pending == 0, "revoked: offset 1 is finished, so the tracker can be freed")
    }

    /// An output lost while its partition is being given up (inside the revocation's drain) is no fault, and the
    /// revocation's commit stops below it, so the next owner reads it again. The drain stops waiting once
    /// everything else has finished, and the tracker is freed once the commit is done. Before, such an output
    /// faulted the instance (`/health` 503) for a partition it was handing over, the drain ran out its timeout,
    /// and the retired tracker was never freed.
    @Test func anOutputLostDuringTheRevocationsDrainIsNoFaultAndIsReadAgainByTheNextOwner() throws {
        let (metrics, faults) = try recorder()
        let (table, index, tracker) = try partitionWaitingOnOffset1()
        #expect(tracker.register(offset: 3, arrivalNanos: 0) == .registered)
        tracker.beginGivingUp()
        refused(index, offset: 1).withUnsafeBufferPointer { metrics.delivered($0, trackers: table) }
        #expect(faults.current == nil)
        #expect(!tracker.settled(), "offset 3 is still in flight")
        tracker.complete(offset: 3)
        #expect(tracker.settled(), "only the lost offset is left, and waiting will not finish it")
        #expect(tracker.committable.load(ordering: .relaxed) == 1, "the commit stops below the lost offset")

        tracker.finishRevocation()
        table.retire(index)
        #expect(table[index] == nil, "freed at once: nothing is left in flight")
        #expect(table.retired.isEmpty)
    }

    /// An output lost while the partition was ours stays a fault, and once the partition is revoked (its commit
    /// stopping below the offset) the tracker is freed rather than waiting for good on the lost offset.
    @Test func aPartitionRevokedAfterItsOutputWasLostIsFreed() throws {
        let (metrics, faults) = try recorder()
        let (table, index, tracker) = try partitionWaitingOnOffset1()
        refused(index, offset: 1).withUnsafeBufferPointer { metrics.delivered($0, trackers: table) }
        #expect(faults.current != nil)
        tracker.beginGivingUp()
        #expect(tracker.settled())
        #expect(tracker.committable.load(ordering: .relaxed) == 1)
        tracker.finishRevocation()
        table.retire(index)
        #expect(table[index] == nil)
    }

    /// A partition given up with an output lost, assigned back to this instance, is a fault (its duplicate filter
    /// drops the re-read); assigned back a second time it is not, and one given up without a loss never is.
    @Test func aPartitionHandedOverWithALossIsAFaultOnlyWhenItComesBack() throws {
        let (table, index, tracker) = try partitionWaitingOnOffset1()
        #expect(tracker.register(offset: 3, arrivalNanos: 0) == .registered)
        tracker.beginGivingUp()
        #expect(table.outputLost(token: DeliveryToken.make(tracker: index, offset: 3, recommendation: true)) == nil)
        #expect(table.outputLost(token: DeliveryToken.make(tracker: index, offset: 1, recommendation: true)) == nil)
        tracker.finishRevocation()
        table.retire(index)
        #expect(table[index] == nil, "nothing left in flight")
        #expect(table.returned(TopicPartition("in", 1)) == nil)
        #expect(table.returned(TopicPartition("in", 0)) == 1, "the lowest lost offset")
        #expect(table.returned(TopicPartition("in", 0)) == nil)
    }

    /// A partition given back while its retired tracker still has messages in flight: its commit stays below
    /// their first unfinished offset (the re-read copies are duplicates that finish at once), and a loss among
    /// them is a fault from then on, holding that floor, where before the return it was finished at once.
    @Test func aPartitionGivenBackCommitsNothingPastWhatItsRetiredTrackerStillWaitsFor() throws {
        let (table, index, tracker) = try partitionWaitingOnOffset1()
        #expect(tracker.register(offset: 3, arrivalNanos: 0) == .registered)
        tracker.beginGivingUp()
        tracker.finishRevocation()
        table.retire(index)
        #expect(table.retired == [index])
        let partition = TopicPartition("in", 0)
        #expect(table.retiredFloor(of: partition) == 1)
        #expect(table.retiredFloor(of: TopicPartition("in", 1)) == nil)
        #expect(table.outputLost(token: DeliveryToken.make(tracker: index, offset: 3, recommendation: true)) == nil,
                "revoked and not back: finished at once, no fault")
        #expect(table.returned(partition) == 3, "lost while the partition was away")

        let lost = table.outputLost(token: DeliveryToken.make(tracker: index, offset: 1, recommendation: true))
        #expect(lost?.offset == 1, "back with this instance: a fault")
        table.sweepRetired()
        #expect(table.retiredFloor(of: partition) == 1, "the lost offset holds the commit")
    }

    /// A retired tracker with nothing left in flight holds no commit back.
    @Test func aFinishedRetiredTrackerHasNoFloor() throws {
        let (table, index, tracker) = try partitionWaitingOnOffset1()
        tracker.beginGivingUp()
        tracker.finishRevocation()
        table.retire(index)
        tracker.complete(offset: 1)
        #expect(table.retiredFloor(of: TopicPartition("in", 0)) == nil)
    }

    /// What the drain waits for when the consumer thread holds a registered message: everything below it.
    @Test func settledBelowAHeldOffsetIgnoresTheOffsetsAfterIt() throws {
        let (_, _, tracker) = try partitionWaitingOnOffset1()
        #expect(tracker.settled(below: 1), "offset 0 finished")
        #expect(!tracker.settled(below: 2), "offset 1 in flight")
        #expect(!tracker.settled())
    }

    /// The retired tracker is freed once the refused offset finishes; before, it stayed in flight for good, and
    /// 4,096 such revocations would have left no index to track a partition with.
    @Test func onARevokedPartitionTheOffsetFinishesAndTheTrackerIsFreed() throws {
        let (metrics, faults) = try recorder()
        let (table, index, tracker) = try partitionWaitingOnOffset1()
        tracker.beginGivingUp()
        tracker.finishRevocation()
        table.retire(index)
        #expect(table.retired == [index])
        refused(index, offset: 1).withUnsafeBufferPointer { metrics.delivered($0, trackers: table) }
        table.sweepRetired()
        #expect(table[index] == nil)
        #expect(table.retired.isEmpty)
        #expect(faults.current == nil)
    }
}

/// A partition's window of offsets in flight.
@Suite struct OffsetTrackerTests {
    /// librdkafka rewinds a partition still ours (a reset after a log truncation): an offset below those
    /// registered is not tracked again. It used to count as registered, and its completion set the flag of the
    /// ring slot a later offset owns (here offset 5's), letting the commit pass 5 unfinished.
    @Test func aRewoundOffsetIsNotTrackedAgain() {
        let tracker = OffsetTracker(partition: TopicPartition("in", 0), window: 4)
        for offset in 0..<Int64(4) {
            #expect(tracker.register(offset: offset, arrivalNanos: 0) == .registered)
            tracker.complete(offset: offset)
        }
        tracker.advance()
        #expect(tracker.committable.load(ordering: .relaxed) == 4)
        #expect(tracker.register(offset: 1, arrivalNanos: 0) == .behind)
        #expect(tracker.register(offset: 4, arrivalNanos: 0) == .registered)
        #expect(tracker.register(offset: 5, arrivalNanos: 0) == .registered)
        tracker.complete(offset: 4)
        tracker.advance()
        #expect(tracker.committable.load(ordering: .relaxed) == 5, "offset 5 is not finished")
        #expect(tracker.register(offset: 3, arrivalNanos: 0) == .behind)
    }

    /// Retention, compaction or an aborted transaction can skip more offsets than the window holds.
    @Test func aSkipWiderThanTheWindowRegistersOnceEverythingBeforeItFinished() {
        let tracker = OffsetTracker(partition: TopicPartition("in", 0), window: 1_024)
        #expect(tracker.register(offset: 0, arrivalNanos: 0) == .registered)
        #expect(tracker.register(offset: 1, arrivalNanos: 0) == .registered)
        tracker.complete(offset: 0)
        tracker.advance()
        // Offset 1 is still in flight: the skip waits for it.
        #expect(tracker.register(offset: 5_000, arrivalNanos: 0) == .full)
        tracker.complete(offset: 1)
        tracker.advance()
        #expect(tracker.register(offset: 5_000, arrivalNanos: 7) == .registered)
        #expect(tracker.committable.load(ordering: .relaxed) == 5_000, "the skipped offsets count as finished")
        #expect(tracker.pending == 1)
        #expect(tracker.arrivalNanos(offset: 5_000) == 7)
        #expect(tracker.register(offset: 5_001, arrivalNanos: 0) == .registered)
        tracker.complete(offset: 5_001)
        tracker.advance()
        #expect(tracker.committable.load(ordering: .relaxed) == 5_000, "5,000 itself is not finished")
        tracker.complete(offset: 5_000)
        tracker.advance()
        #expect(tracker.committable.load(ordering: .relaxed) == 5_002)
    }

    /// An offset with an output besides its first (an identity message beside a recommendation) finishes only
    /// once its processing and both outputs are done, in any order.
    @Test func anOffsetFinishesOnceEveryHoldIsLetGo() {
        let tracker = OffsetTracker(partition: TopicPartition("in", 0), window: 4)
        #expect(tracker.register(offset: 0, arrivalNanos: 0) == .registered)
        #expect(tracker.register(offset: 1, arrivalNanos: 0) == .registered)
        tracker.hold(offset: 0)  // the identity message
        tracker.complete(offset: 1)
        tracker.complete(offset: 0)  // the identity message delivered before the recommendation
        tracker.advance()
        #expect(tracker.committable.load(ordering: .relaxed) == 0, "the recommendation is still in flight")
        tracker.complete(offset: 0)
        tracker.advance()
        #expect(tracker.committable.load(ordering: .relaxed) == 2)
        // The ring wraps: a slot's next offset starts with its processing hold alone.
        for offset in 2..<Int64(6) { #expect(tracker.register(offset: offset, arrivalNanos: 0) == .registered) }
        tracker.advance()
        #expect(tracker.committable.load(ordering: .relaxed) == 2)
        for offset in 2..<Int64(6) { tracker.complete(offset: offset) }
        tracker.advance()
        #expect(tracker.committable.load(ordering: .relaxed) == 6)
    }

    @Test func aFullWindowStillWaits() {
        let tracker = OffsetTracker(partition: TopicPartition("in", 0), window: 4)
        for offset in 0..<4 as Range<Int64> { #expect(tracker.register(offset: offset, arrivalNanos: 0) == .registered) }
        #expect(tracker.register(offset: 4, arrivalNanos: 0) == .full, "0 is not finished")
        tracker.complete(offset: 0)
        tracker.advance()
        #expect(tracker.register(offset: 4, arrivalNanos: 0) == .registered)
    }
}
