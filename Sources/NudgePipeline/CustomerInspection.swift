import Atomics
import Dispatch
import NudgeEvents

/// Why an inspection got no answer.
public enum InspectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The pipeline is not started, or is stopping: no shard thread will answer.
    case notRunning
    /// The owning shard's inspection queue is full; try again shortly.
    case busy(shard: Int)
    /// The owning shard did not answer in time (it is behind on a long batch, or stuck).
    case timedOut(shard: Int, after: Duration)
    /// The id asked for is an anonymous id linked to `customer`, whose partitions another instance of the
    /// group consumes: ask that instance for `customer`.
    case linkedElsewhere(anonymousId: String, customer: String)
    /// The id asked for is an anonymous id linked to `customer`, of whom the shard that owns them holds
    /// nothing (their partition came here after the link was made, or their state was dropped).
    case linkedToUnknown(anonymousId: String, customer: String)

    /// A sentence for logs and HTTP answers.
    public var description: String {
        switch self {
        case .notRunning: "the pipeline is not running"
        case .busy(let shard): "shard \(shard) has too many inspections queued; try again"
        case .timedOut(let shard, let after): "shard \(shard) did not answer within \(after)"
        case .linkedElsewhere(let anonymousId, let customer):
            "\(anonymousId) is an anonymous id linked to customer \(customer), whose partition another instance consumes: ask that instance for \(customer)"
        case .linkedToUnknown(let anonymousId, let customer):
            "\(anonymousId) is an anonymous id linked to customer \(customer), of whom this instance holds nothing (their partition came here after the link was made, or their state was dropped)"
        }
    }
}

/// What the shard owning an id answers about it.
enum InspectionAnswer: Sendable {
    /// The id is a customer of the shard's store: their snapshot.
    case customer(CustomerSnapshot)
    /// The id is an anonymous id the shard routes to the customer `user` (a live identity link), as the
    /// link holds the id's bytes; `elsewhere` when that customer's partition is another instance's.
    case linked(user: [UInt8], elsewhere: Bool)
    /// The shard knows nothing of the id.
    case unknown

    /// The snapshot, if the answer is one.
    var snapshot: CustomerSnapshot? {
        if case .customer(let snapshot) = self { return snapshot }
        return nil
    }
}

/// One customer inspection on its way to the shard that owns the customer, and its answer on the way back.
///
/// The caller waits on a continuation; the shard thread answers between two events, or a timer answers for
/// it. Whichever comes first resumes the caller; the other is dropped, so neither ever waits on the other.
final class InspectionRequest: Sendable {
    /// The customer id's bytes (userId, else anonymousId).
    let customerId: [UInt8]
    /// Event time to evaluate at; nil for the shard's newest event time.
    let atMillis: Int64?
    private let continuation: CheckedContinuation<Result<InspectionAnswer, InspectionError>, Never>
    private let answered = ManagedAtomic<Bool>(false)

    init(customerId: [UInt8], atMillis: Int64?,
         continuation: CheckedContinuation<Result<InspectionAnswer, InspectionError>, Never>) {
        self.customerId = customerId
        self.atMillis = atMillis
        self.continuation = continuation
    }

    /// True once an answer (or a timeout) has resumed the caller: the shard can skip the work.
    var isAnswered: Bool { answered.load(ordering: .acquiring) }

    /// Resumes the caller with `result`, unless something already did.
    func answer(_ result: Result<InspectionAnswer, InspectionError>) {
        guard !answered.exchange(true, ordering: .acquiringAndReleasing) else { return }
        continuation.resume(returning: result)
    }
}

/// The inspections queued for one shard thread. Readers on any thread `ask`; the shard thread
/// `answerPending` between two events. Lock-free both ways: a bounded queue in, a continuation back.
final class InspectionMailbox: @unchecked Sendable {
    // Sendable: the queue is thread-safe (many pushers, one popper: the shard thread, or deinit when
    // nothing else holds the mailbox); `wake` is a Sendable closure.
    /// Retained `InspectionRequest`s (the queue holds plain values only).
    private let queue: BoundedQueue<UnsafeMutableRawPointer>
    private let wake: @Sendable () -> Void
    /// The shard's number, for errors.
    let shard: Int

    /// A mailbox for `shard` holding at most `capacity` requests; `wake` wakes the shard thread wherever it
    /// sleeps, after a request is queued.
    init(shard: Int, capacity: Int, wake: @escaping @Sendable () -> Void) {
        self.shard = shard
        queue = BoundedQueue(capacity: capacity)
        self.wake = wake
    }

    deinit {
        // Requests queued after the shard thread's last turn: nobody will answer them but the timer, and
        // each holds a retain.
        while let pointer = queue.pop() {
            Unmanaged<InspectionRequest>.fromOpaque(pointer).takeRetainedValue().answer(.failure(.notRunning))
        }
    }

    /// True when a request waits (for the shard's wait condition).
    var hasPending: Bool { queue.hasValue }

    /// Queues a request for the customer with these id bytes and waits for the shard's answer, or for
    /// `timeout`. Never blocks the shard: a full mailbox is refused as busy at once.
    func ask(customerId: [UInt8], atMillis: Int64?, timeout: Duration) async -> Result<InspectionAnswer, InspectionError> {
        await withCheckedContinuation { continuation in
            let request = InspectionRequest(customerId: customerId, atMillis: atMillis, continuation: continuation)
            let pointer = Unmanaged.passRetained(request).toOpaque()
            guard queue.tryPush(pointer) else {
                Unmanaged<InspectionRequest>.fromOpaque(pointer).release()
                request.answer(.failure(.busy(shard: shard)))
                return
            }
            wake()
            let shard = self.shard
            DispatchQueue.global().asyncAfter(deadline: .now() + dispatchInterval(timeout)) {
                request.answer(.failure(.timedOut(shard: shard, after: timeout)))
            }
        }
    }

    /// Answers up to `limit` queued requests with what `inspect` finds, skipping those that already timed out.
    /// Shard thread only.
    func answerPending(limit: Int, with inspect: (_ customerId: [UInt8], _ atMillis: Int64?) -> InspectionAnswer) {
        var taken = 0
        while taken < limit, let pointer = queue.pop() {
            let request = Unmanaged<InspectionRequest>.fromOpaque(pointer).takeRetainedValue()
            taken += 1
            guard !request.isAnswered else { continue }  // nobody is waiting any more
            request.answer(.success(inspect(request.customerId, request.atMillis)))
        }
    }
}

extension Pipeline {
    /// A consistent value snapshot of `customer`, or nil when no shard of this instance has seen them.
    ///
    /// Takes no lock on the store: the request is queued to the shard thread that owns the customer (routed
    /// by the hash the consumer routes keys with), which answers between two events. Features are evaluated
    /// at `atMillis` (Unix milliseconds of event time), or at the shard's newest event time when nil; never
    /// before the customer's newest event (see ``CustomerSnapshot/evaluatedAtMillis``).
    ///
    /// An anonymous id whose history was folded into a known customer by an identity link still in force
    /// answers with that customer's snapshot, its ``CustomerSnapshot/linkedFrom`` set: the id's events go
    /// to that customer too.
    ///
    /// Only the customers of the partitions this instance consumes are here; with several instances in a
    /// group, ask the one that owns the customer's partition.
    ///
    /// - Throws: ``InspectionError`` when the pipeline is not running, a shard's queue is full, a shard
    ///   does not answer within `timeout` (for each of the two shards a linked id asks), or the id is linked
    ///   to a customer of another instance or of whom this one holds nothing. Cancelling the calling task does not end the wait early; the
    ///   timeout bounds it.
    public func inspect(customer: String, atMillis: Int64? = nil,
                        timeout: Duration = .seconds(2)) async throws(InspectionError) -> CustomerSnapshot? {
        guard isRunning else { throw .notRunning }
        let id = Array(customer.utf8)
        guard !id.isEmpty else { return nil }
        switch try await shardOwning(customer: id).inspections.ask(customerId: id, atMillis: atMillis, timeout: timeout).get() {
        case .customer(let snapshot): return snapshot
        case .unknown: return nil
        case .linked(let user, elsewhere: true):
            throw .linkedElsewhere(anonymousId: customer, customer: String(decoding: user, as: UTF8.self))
        case .linked(let user, elsewhere: false):
            // One hop: a customer's shard answers for the customer (links never point at anonymous ids). The
            // merge of the id's history may still be on its way there: the snapshot then lacks it, for now.
            let answer = try await shardOwning(customer: user).inspections.ask(customerId: user, atMillis: atMillis, timeout: timeout).get()
            guard var snapshot = answer.snapshot else {
                throw .linkedToUnknown(anonymousId: customer, customer: String(decoding: user, as: UTF8.self))
            }
            snapshot.linkedFrom = customer
            return snapshot
        }
    }
}

/// `duration` for Dispatch, clamped to a day (longer waits are a mistake, and the nanoseconds must fit an Int).
private func dispatchInterval(_ duration: Duration) -> DispatchTimeInterval {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return .nanoseconds(0) }
    guard seconds < 86_400 else { return .seconds(86_400) }
    return .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
}
