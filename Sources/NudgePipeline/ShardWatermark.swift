/// Where one shard stands in event time: the newest event time of each source partition it hears from,
/// and from them the shard's watermark, the event time before which it expects no more events.
///
/// **Rule.** watermark = max(previous watermark, min over active partitions of (partition's newest event
/// time − allowed lateness)). A partition is active while it is assigned and has sent a message (or was
/// assigned) less than the idle timeout ago, by the wall clock; an active partition that has sent no event
/// yet holds the watermark where it is. So a lagging partition holds the shard back (its events are not
/// late just because another partition runs ahead), and an idle one does not stall it. When every
/// partition is idle the input has caught up: the min runs over the partitions that have sent events, so a
/// burst shorter than the idle timeout still moves the watermark once it is over. The watermark never moves
/// back, also not when an idle partition wakes up behind it (its events are then late).
///
/// **Cost.** ``observe(partition:eventMillis:)`` is O(1) and allocation-free once the partition is known;
/// ``advance(wallMillis:)``, once per batch, is O(partitions). Partitions are identified by a small slot
/// number (the pipeline's offset-tracker index); a slot reused for another partition is reset by
/// ``assign(partition:epoch:)``.
struct ShardWatermark {
    private struct PartitionClock {
        /// Assignment this state belongs to (0: seen without an assignment).
        var epoch: UInt64 = 0
        var newestMillis: Int64 = .min
        var lastMessageWallMillis: Int64 = .min
        var present = false
        /// Revoked and not assigned since: messages still in flight from the old assignment do not rejoin it
        /// (the slot would keep their times when it is reused for another partition).
        var revoked = false
    }

    private let latenessMillis: Int64
    private let idleMillis: Int64
    private var partitions: [PartitionClock] = []
    /// Slots with `present` set, for the O(partitions) scan.
    private var present: [Int] = []
    /// The watermark (Unix ms); `Int64.min` until the first event of every active partition.
    private(set) var millis: Int64 = .min
    /// Newest event time of any partition: the shard's event-time "now".
    private(set) var newestEventMillis: Int64 = .min
    /// The wall clock as of the last ``advance(wallMillis:)``, stamped on messages in between (one clock
    /// read per batch rather than per event).
    private(set) var wallMillis: Int64 = 0

    init(allowedLatenessMillis: Int64, idleTimeoutMillis: Int64) {
        latenessMillis = max(0, allowedLatenessMillis)
        idleMillis = max(0, idleTimeoutMillis)
    }

    /// An event at `eventMillis` came from `partition`. A partition not seen or assigned before joins; one
    /// revoked since (a message in flight at the revocation) does not.
    @inline(__always)
    mutating func observe(partition: Int, eventMillis: Int64) {
        guard partition >= 0 else { return }
        if eventMillis > newestEventMillis { newestEventMillis = eventMillis }
        if partition >= partitions.count || !partitions[partition].present {
            if partition < partitions.count && partitions[partition].revoked { return }
            join(partition, epoch: 0)
        }
        partitions[partition].lastMessageWallMillis = wallMillis
        if eventMillis > partitions[partition].newestMillis { partitions[partition].newestMillis = eventMillis }
    }

    /// True when an event at `eventMillis` is behind the watermark: later than the allowed lateness.
    @inline(__always)
    func isLate(_ eventMillis: Int64) -> Bool { eventMillis < millis }

    /// `partition` was assigned to this instance (assignment number `epoch`): it holds the watermark back
    /// from now until it sends events or idles out. Forgets what the slot knew of an earlier assignment, but
    /// keeps what its messages taught before the shard heard of the assignment (epoch 0).
    mutating func assign(partition: Int, epoch: UInt64) {
        guard partition >= 0 else { return }
        if partition < partitions.count, partitions[partition].present {
            if partitions[partition].epoch == epoch { return }
            if partitions[partition].epoch == 0 {
                partitions[partition].epoch = epoch
                return
            }
        }
        join(partition, epoch: epoch)
    }

    /// `partition` is no longer assigned: it stops counting, and its messages still in flight are ignored
    /// until the slot is assigned again.
    mutating func revoke(partition: Int) {
        guard partition >= 0, partition < partitions.count, partitions[partition].present else { return }
        partitions[partition].present = false
        partitions[partition].revoked = true
        present.removeAll { $0 == partition }
    }

    /// The assignment epoch a slot is tracked under, nil when it is not tracked.
    func epoch(of partition: Int) -> UInt64? {
        partition >= 0 && partition < partitions.count && partitions[partition].present ? partitions[partition].epoch : nil
    }

    /// Moves the wall clock to `wallMillis` and recomputes the watermark; true when it moved.
    @discardableResult
    mutating func advance(wallMillis now: Int64) -> Bool {
        wallMillis = now
        var lowestActive = Int64.max
        var lowestSeen = Int64.max
        var active = false
        for slot in present {
            let clock = partitions[slot]
            let mark = clock.newestMillis == .min ? Int64.min : clock.newestMillis.addingSaturating(-latenessMillis)
            if clock.newestMillis != .min { lowestSeen = min(lowestSeen, mark) }
            // Saturating: a wall clock set far back must not trap; it only makes nothing idle.
            guard now.addingSaturating(-clock.lastMessageWallMillis) < idleMillis else { continue }
            active = true
            lowestActive = min(lowestActive, mark)
        }
        let candidate = active ? lowestActive : lowestSeen
        guard candidate != .min, candidate != .max, candidate > millis else { return false }
        millis = candidate
        return true
    }

    private mutating func join(_ partition: Int, epoch: UInt64) {
        guard partition >= 0 else { return }
        if partition >= partitions.count {
            partitions.append(contentsOf: repeatElement(PartitionClock(), count: partition + 1 - partitions.count))
        }
        if !partitions[partition].present { present.append(partition) }
        partitions[partition] = PartitionClock(epoch: epoch, newestMillis: .min, lastMessageWallMillis: wallMillis, present: true)
    }
}
