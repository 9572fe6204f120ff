import NudgeEvents
import NudgeFeatures

/// How a point-in-time dataset is cut from history.
public struct DatasetConfig: Sendable {
    /// Features to compute: the service's own definitions, so that training sees what serving sees.
    public var features: FeatureSet = .standard
    /// Time between two cutoffs (default 7 days).
    public var cutoffEveryMillis: Int64 = 7 * DatasetConfig.dayMillis
    /// Churn horizon: a row is churned when the customer completes no order in (T, T + horizon] (30 days).
    public var horizonMillis: Int64 = 30 * DatasetConfig.dayMillis
    /// History before the first cutoff, so windows fill up (30 days, counted from the UTC midnight at or
    /// before the first event).
    public var warmupMillis: Int64 = 30 * DatasetConfig.dayMillis
    /// A customer gets a row at T only if their newest event is within this long before T (30 days).
    public var activeWindowMillis: Int64 = 30 * DatasetConfig.dayMillis
    /// An offer counts as accepted when `Offer Accepted` comes at most this long after `Offer Delivered` (7 days).
    public var acceptWindowMillis: Int64 = 7 * DatasetConfig.dayMillis
    /// Explicit first cutoff (overrides the warm-up rule); nil to derive it from the first event.
    public var firstCutoffMillis: Int64?
    /// Message ids remembered for dropping duplicates: the service's default.
    public var duplicateHorizon = 1 << 20
    /// Largest message accepted: the service's default.
    public var maxMessageBytes = SegmentDecoder.defaultMaxMessageBytes
    /// Expected customers, to size the feature store up front (it grows past this).
    public var expectedCustomers = 1 << 16
    /// An identity link unused this long (event time) no longer resolves its anonymous id: the service's
    /// `--idle-customer-ttl` (30 days), which must match for the dataset to equal what the service saw.
    public var identityLinkTTLMillis: Int64 = 30 * DatasetConfig.dayMillis

    /// One day in milliseconds.
    public static let dayMillis: Int64 = 86_400_000

    /// The defaults above.
    public init() {}
}

/// One churn example: a known customer's features as of cutoff T and what happened after T.
public struct ChurnRow: Sendable, Equatable {
    /// The customer (userId).
    public var customerId: String
    /// The cutoff T, Unix milliseconds.
    public var cutoffMillis: Int64
    /// Feature values as of T, in ``PointInTimeDataset/featureNames`` order.
    public var features: [Double]
    /// True when the customer completed no order in (T, T + horizon].
    public var churned: Bool
}

/// One delivered offer: the customer's features as the service saw them when the offer was delivered, and
/// what the customer did with it.
public struct OfferRow: Sendable, Equatable {
    /// The customer (userId, else anonymousId).
    public var customerId: String
    /// Event time of `Offer Delivered`, Unix milliseconds.
    public var deliveredMillis: Int64
    /// `properties.recommendation_id`.
    public var recommendationId: String
    /// `properties.action`.
    public var action: String
    /// The channel the offer was delivered on (contract name).
    public var channel: String
    /// Feature values just before the delivery was applied, evaluated as the live path does
    /// (at max(delivery time, the customer's newest event time)).
    public var features: [Double]
    /// An `Offer Viewed` with the same recommendation id arrived (at any time).
    public var viewed: Bool
    /// An `Offer Dismissed` with the same recommendation id arrived (at any time).
    public var dismissed: Bool
    /// An `Offer Accepted` with the same recommendation id came within the accept window: the label.
    public var accepted: Bool
}

/// What the replay saw, for the command's summary and for tests.
public struct ReplayStatistics: Sendable, Equatable {
    /// Messages handed to the builder.
    public var messages = 0
    /// Messages the decoder refused (they would be dead-lettered live); skipped.
    public var malformed = 0
    /// Messages dropped as duplicates (same messageId within the horizon), as live.
    public var duplicates = 0
    /// Events folded into the feature store.
    public var applied = 0
    /// Events older than the newest event time seen before them (out of order).
    public var outOfOrder = 0
    /// Late events that arrived after the snapshot of a cutoff later than their time: as live, they were
    /// not in that snapshot's features.
    public var missedBySnapshot = 0
    /// Cutoffs snapshotted.
    public var cutoffs = 0
    /// Cutoffs dropped because T + horizon is past the end of the history (their labels are unknowable).
    public var censoredCutoffs = 0
    /// Cutoffs skipped without a snapshot because an event jumped far ahead in time (more than 520 cutoffs).
    public var skippedCutoffs = 0
    /// `Offer Delivered` events seen.
    public var offersDelivered = 0
    /// Offers without a usable row: delivered before the first cutoff (warm-up) or without a recommendation id.
    public var offersSkipped = 0
    /// Offers dropped because delivery + accept window is past the end of the history.
    public var censoredOffers = 0
    /// Event time of the first event applied.
    public var firstEventMillis: Int64?
    /// Newest event time seen (the final watermark).
    public var lastEventMillis: Int64?
    /// The first cutoff.
    public var firstCutoffMillis: Int64?
    /// Distinct store keys seen (customers and anonymous ids).
    public var keys = 0
    /// Keys seen with a userId at least once: known customers, the ones churn rows are written for.
    public var knownCustomers = 0

    /// The empty statistics.
    public init() {}
}

/// A point-in-time dataset: churn rows and offer rows, with the feature names their vectors follow.
public struct PointInTimeDataset: Sendable {
    /// Feature names in vector order.
    public var featureNames: [String]
    /// Churn rows, by cutoff then by order of first sight of the customer.
    public var churnRows: [ChurnRow]
    /// Offer rows, in arrival order of `Offer Delivered`.
    public var offerRows: [OfferRow]
    /// What the replay saw.
    public var statistics: ReplayStatistics
}

/// Replays a history through the live feature code and cuts a point-in-time dataset from it.
///
/// Messages go through exactly what a shard does: ``SegmentDecoder``, ``RecentMessageIDs`` dedupe,
/// ``CustomerTable/slot(for:)`` on `customerId` and ``CustomerTable/apply(_:to:)``, in the order given
/// (arrival order, as Kafka delivers a partition). Cutoffs are taken on event time:
///
/// - The **watermark** is the newest event time seen so far. When an event arrives whose time is past the
///   next cutoff T, the builder first snapshots every known customer active in the `activeWindow` before T,
///   evaluating features at T, and only then applies the event. So every event applied to a snapshot has
///   time ≤ T (no leakage), and the evaluation is exact (T is at or after each customer's newest event).
/// - An event that arrives **after** that snapshot with a time ≤ T is late: it is applied (it counts for later
///   cutoffs) but is missing from T's rows, exactly as a live decision taken at that moment would miss it.
///   ``ReplayStatistics/missedBySnapshot`` counts them.
/// - Labels look at the whole history: churn = no `Order Completed` with time in (T, T + horizon]; cutoffs
///   whose horizon passes the last event time are dropped, not labelled.
/// - Offers: each `Offer Delivered` after the warm-up gets a row with the features the live path would
///   evaluate at that moment, just before the delivery itself is applied; accepted = an `Offer Accepted`
///   with the same `recommendation_id` within the accept window (in any arrival order).
///
/// Known customers are store keys seen with a `userId`: sessions known only by an `anonymousId` are in the
/// store (as live) but get no churn rows.
public final class PointInTimeDatasetBuilder {
    /// The configuration in use.
    public let config: DatasetConfig
    private let decoder: SegmentDecoder
    private let table: CustomerTable
    private var recent: RecentMessageIDs
    private let featureValues: UnsafeMutableBufferPointer<Double>
    /// Identity links, as one shard of the service keeps them (it routes and resolves every link).
    private let links = IdentityLinks(capacity: Int(Int32.max))

    /// Slots by index (the table hands them out densely, in order of first sight).
    private var slots: [CustomerSlot] = []
    /// Whether the key was ever seen with a userId.
    private var known: [Bool] = []
    /// Event times of each key's completed orders (any arrival order).
    private var orderTimes: [[Int64]] = []

    private var nextCutoff: Int64?
    private var lastSnapshot: Int64?
    private var snapshots: [Int64] = []
    private var watermark: Int64 = .min
    private var statistics = ReplayStatistics()

    private struct PendingChurn {
        var slot: Int32
        /// The slot's ``slotGeneration`` when the row was taken: another one means its customer was folded
        /// into another by an identity link (see ``folded``) and the slot may hold someone else now.
        var generation: UInt32
        var cutoff: Int64
        var features: [Double]
    }
    /// Per slot: bumped each time an identity link folds the slot's customer into another.
    private var slotGeneration: [UInt32] = []
    /// Where a folded customer went, by old slot and generation, and who they were: their rows keep their own
    /// id and take their labels from the customer that now holds their orders.
    private var folded: [UInt64: (slot: Int32, generation: UInt32, customerId: String)] = [:]
    private var pendingChurn: [PendingChurn] = []

    private struct PendingOffer {
        var row: OfferRow
        var recommendation: UInt64
    }
    private var pendingOffers: [PendingOffer] = []
    private var acceptedAt: [UInt64: Int64] = [:]
    private var viewed: Set<UInt64> = []
    private var dismissed: Set<UInt64> = []

    /// The most cutoffs one event may pass at once before the builder stops snapshotting each of them:
    /// ten years of weekly cutoffs. A timestamp far in the future must not produce millions of snapshots.
    static let maxCutoffsPerJump: Int64 = 520

    /// A builder with an empty feature store.
    public init(config: DatasetConfig = DatasetConfig()) {
        self.config = config
        decoder = SegmentDecoder(maxMessageBytes: config.maxMessageBytes, properties: config.features.readProperties)
        table = CustomerTable(features: config.features, expectedCustomers: config.expectedCustomers)
        recent = RecentMessageIDs(horizon: config.duplicateHorizon)
        featureValues = .allocate(capacity: max(1, config.features.count))
        featureValues.initialize(repeating: 0)
    }

    deinit { featureValues.deallocate() }

    /// Feature names in vector order.
    public var featureNames: [String] { config.features.names }

    /// Cutoffs snapshotted so far. A cutoff's snapshot is taken inside the ``consume(_:)`` of the first event
    /// past it, before that event applies: a replay elsewhere (the live pipeline, in the parity test) lines up
    /// on the messages before that one.
    public var cutoffsTaken: Int { statistics.cutoffs }

    /// Handles one message (one JSONL line), in arrival order.
    public func consume(_ message: UnsafeRawBufferPointer) {
        statistics.messages += 1
        let event: SegmentEvent
        do { event = try decoder.decode(message) } catch {
            statistics.malformed += 1
            return
        }
        guard recent.insert(event.messageId) else {
            statistics.duplicates += 1
            return
        }
        let time = event.timestampMillis
        if nextCutoff == nil { start(at: time) }
        advanceCutoffs(to: time)
        if time < watermark { statistics.outOfOrder += 1 }
        if let lastSnapshot, time <= lastSnapshot { statistics.missedBySnapshot += 1 }
        watermark = max(watermark, time)

        // Identity as the service stitches it: an anonymous id linked to a customer is that customer.
        let customer = event.customerId
        var linked: CustomerSlot?
        if event.userId.isEmpty, let link = links.link(of: customer.bytes, hash: customer.hash64) {
            if links.isExpired(at: link, atMillis: time, ttlMillis: config.identityLinkTTLMillis) {
                links.remove(at: link)
            } else {
                links.touch(link, atMillis: time)
                linked = links.withIds(at: link) { _, user in table.slot(for: RawText(user)) }
            }
        }
        let slot = linked ?? table.slot(for: customer)
        let index = Int(slot.index)
        if index == slots.count {
            slots.append(slot)
            known.append(false)
            orderTimes.append([])
            slotGeneration.append(0)
        }
        if !event.userId.isEmpty && !known[index] {
            known[index] = true
            statistics.knownCustomers += 1
        }
        switch event.kind {
        case .orderCompleted: orderTimes[index].append(time)
        case .offerDelivered: recordOffer(event, slot: slot)
        case .offerViewed: if !event.recommendationId.isEmpty { viewed.insert(event.recommendationId.hash64) }
        case .offerDismissed: if !event.recommendationId.isEmpty { dismissed.insert(event.recommendationId.hash64) }
        case .offerAccepted:
            if !event.recommendationId.isEmpty {
                let key = event.recommendationId.hash64
                acceptedAt[key] = min(acceptedAt[key] ?? .max, time)
            }
        default: break
        }
        table.apply(event, to: slot)
        statistics.applied += 1
        if !event.userId.isEmpty && !event.anonymousId.isEmpty && !event.anonymousId.bytes.elementsEqual(event.userId.bytes) {
            link(event.anonymousId, to: event.userId, atMillis: time)
        }
    }

    /// The service's identity link on one shard: the anonymous id's history (features and orders) becomes the
    /// customer's, and its later events are the customer's, unless the link already holds.
    private func link(_ anonymous: RawText, to user: RawText, atMillis: Int64) {
        if let known = links.link(of: anonymous.bytes, hash: anonymous.hash64), links.isUser(at: known, user.bytes),
           !links.isExpired(at: known, atMillis: atMillis, ttlMillis: config.identityLinkTTLMillis) {
            return
        }
        links.set(anonymous: anonymous.bytes, hash: anonymous.hash64, user: user.bytes, routes: true, atMillis: atMillis,
                  generation: 0) { _ in }
        guard let (detached, from) = table.detach(anonymous) else { return }
        let target = table.slot(for: user)
        table.merge(detached, into: target)
        if case .hot(let freed) = from, freed.index != target.index {
            // The freed slot will be someone else's: its orders are the customer's now, and rows already
            // taken for it (it may have been a known customer too) follow it there.
            let from = Int(freed.index)
            orderTimes[Int(target.index)] += orderTimes[from]
            orderTimes[from] = []
            known[from] = false
            folded[Self.foldKey(freed.index, slotGeneration[from])] = (target.index, slotGeneration[Int(target.index)], anonymous.string)
            slotGeneration[from] &+= 1
        }
    }

    /// Labels the rows, drops those whose outcome the history cannot tell yet, and returns the dataset.
    /// Call once, after the last message.
    public func finish() -> PointInTimeDataset {
        var stats = statistics
        stats.keys = slots.count
        stats.lastEventMillis = watermark == .min ? nil : watermark
        for index in orderTimes.indices { orderTimes[index].sort() }

        var churnRows: [ChurnRow] = []
        churnRows.reserveCapacity(pendingChurn.count)
        for pending in pendingChurn where pending.cutoff + config.horizonMillis <= watermark {
            // Follow folds to the slot that holds the row's customer's orders now.
            var (slot, generation, customerId) = (pending.slot, pending.generation, String?.none)
            while slotGeneration[Int(slot)] != generation, let next = folded[Self.foldKey(slot, generation)] {
                customerId = customerId ?? next.customerId
                (slot, generation) = (next.slot, next.generation)
            }
            let orders = orderTimes[Int(slot)]
            let next = Self.firstIndex(in: orders, after: pending.cutoff)
            let ordered = next < orders.count && orders[next] <= pending.cutoff + config.horizonMillis
            churnRows.append(ChurnRow(customerId: customerId ?? table.customerId(of: slots[Int(pending.slot)]),
                                      cutoffMillis: pending.cutoff, features: pending.features, churned: !ordered))
        }
        stats.censoredCutoffs = snapshots.filter { $0 + config.horizonMillis > watermark }.count

        var offerRows: [OfferRow] = []
        offerRows.reserveCapacity(pendingOffers.count)
        for pending in pendingOffers {
            var row = pending.row
            guard row.deliveredMillis + config.acceptWindowMillis <= watermark else {
                stats.censoredOffers += 1
                continue
            }
            row.viewed = viewed.contains(pending.recommendation)
            row.dismissed = dismissed.contains(pending.recommendation)
            if let accepted = acceptedAt[pending.recommendation] {
                row.accepted = accepted - row.deliveredMillis <= config.acceptWindowMillis
            }
            offerRows.append(row)
        }
        return PointInTimeDataset(featureNames: featureNames, churnRows: churnRows, offerRows: offerRows, statistics: stats)
    }

    // MARK: Cutoffs

    private func start(at time: Int64) {
        let first = config.firstCutoffMillis
            ?? Self.floorDiv(time, DatasetConfig.dayMillis) * DatasetConfig.dayMillis + config.warmupMillis
        nextCutoff = first
        statistics.firstCutoffMillis = first
        statistics.firstEventMillis = time
    }

    /// Snapshots every cutoff the event time has passed, before the event is applied.
    private func advanceCutoffs(to time: Int64) {
        guard var cutoff = nextCutoff, time > cutoff else { return }
        let every = max(config.cutoffEveryMillis, 1)
        let passed = (time - cutoff - 1) / every + 1
        if passed > Self.maxCutoffsPerJump {
            // Jump to the last cutoff before `time` without a snapshot per skipped cutoff.
            statistics.skippedCutoffs += Int(passed - 1)
            cutoff += (passed - 1) * every
        }
        while time > cutoff {
            snapshot(at: cutoff)
            cutoff += every
        }
        nextCutoff = cutoff
    }

    private func snapshot(at cutoff: Int64) {
        statistics.cutoffs += 1
        snapshots.append(cutoff)
        lastSnapshot = cutoff
        let activeSince = cutoff - config.activeWindowMillis
        let width = config.features.count
        for (index, slot) in slots.enumerated() where known[index] {
            let newest = table.newestEventMillis(of: slot)
            guard newest != .min, newest > activeSince else { continue }
            table.evaluate(slot, atMillis: cutoff, into: featureValues)
            pendingChurn.append(PendingChurn(slot: slot.index, generation: slotGeneration[index], cutoff: cutoff,
                                             features: Array(UnsafeBufferPointer(rebasing: featureValues[0..<width]))))
        }
    }

    // MARK: Offers

    private func recordOffer(_ event: SegmentEvent, slot: CustomerSlot) {
        statistics.offersDelivered += 1
        let time = event.timestampMillis
        guard let first = statistics.firstCutoffMillis, time >= first, !event.recommendationId.isEmpty else {
            statistics.offersSkipped += 1
            return
        }
        // The live path evaluates at max(event time, newest event time) after applying; a propensity model
        // is used before the delivery exists, so the delivery itself is not applied yet.
        let at = max(time, table.newestEventMillis(of: slot))
        table.evaluate(slot, atMillis: at, into: featureValues)
        let width = config.features.count
        let row = OfferRow(customerId: table.customerId(of: slot), deliveredMillis: time,
                           recommendationId: event.recommendationId.string, action: event.action.string,
                           channel: event.channel.wireName,
                           features: Array(UnsafeBufferPointer(rebasing: featureValues[0..<width])),
                           viewed: false, dismissed: false, accepted: false)
        pendingOffers.append(PendingOffer(row: row, recommendation: event.recommendationId.hash64))
    }

    // MARK: Helpers

    static func foldKey(_ slot: Int32, _ generation: UInt32) -> UInt64 { UInt64(UInt32(bitPattern: slot)) << 32 | UInt64(generation) }

    /// Index of the first element of sorted `values` greater than `time` (binary search).
    static func firstIndex(in values: [Int64], after time: Int64) -> Int {
        var low = 0
        var high = values.count
        while low < high {
            let mid = (low + high) / 2
            if values[mid] <= time { low = mid + 1 } else { high = mid }
        }
        return low
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return a % b < 0 ? q - 1 : q
    }
}
