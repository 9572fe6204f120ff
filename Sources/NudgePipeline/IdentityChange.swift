import NudgeDecisions
import NudgeFeatures

/// A message between shards that stitches identities (see ``EventProcessor``'s note on identity). It travels
/// on the receiving shard's forwards queue, behind the events the sender forwarded before it, so that order
/// between one sender and one receiver holds; to a shard of another instance it travels on the identity
/// topic (``IdentityWire``), keyed by the id whose owner must receive it (``key``).
final class IdentityChange: Sendable {
    enum Kind: Sendable {
        /// To the anonymous id's shard, from the customer's: `anonymous` is `user`'s; hand over its history and
        /// route its events to `user` from now on.
        case link
        /// To the customer's shard: fold the anonymous id's history into `user`.
        case merge(features: DetachedCustomer?, cart: CartState?, contacts: ContactHistory)
        /// To the customer's shard, from the anonymous id's: it no longer routes `anonymous` to `user`
        /// (expired, dropped at the capacity, or linked to someone else); forget the link.
        case unlink
        /// To the customer's instance, through the identity topic: an event of `anonymous` (these bytes), which
        /// is `user`'s, and how the relaying shard judged its time (nil from an instance that did not). Between
        /// shards of one instance the message itself travels instead.
        case event([UInt8], time: RelayedEventTime?)
    }

    let kind: Kind
    let anonymous: [UInt8]
    let user: [UInt8]
    /// Event time of the event that made the link (for the link's expiry).
    let atMillis: Int64
    /// The link's number, given by the customer's shard (see ``IdentityLink/generation``).
    let generation: UInt64
    /// Between shards of one instance: the offset (a ``DeliveryToken``) of the message whose processing caused
    /// it, which holds that offset until the receiving shard has handled it and sent what it caused;
    /// ``DeliveryToken/none`` when none does.
    let source: UInt64

    init(_ kind: Kind, anonymous: [UInt8], user: [UInt8], atMillis: Int64, generation: UInt64, source: UInt64 = DeliveryToken.none) {
        self.kind = kind
        self.anonymous = anonymous
        self.user = user
        self.atMillis = atMillis
        self.generation = generation
        self.source = source
    }

    /// The same change, holding the offset in `token`.
    func caused(by token: UInt64) -> IdentityChange {
        IdentityChange(kind, anonymous: anonymous, user: user, atMillis: atMillis, generation: generation, source: token)
    }

    /// Whether it is an ``Kind/unlink``, which no offset waits for.
    var isUnlink: Bool {
        if case .unlink = kind { return true }
        return false
    }

    /// The id whose owner receives the change: the anonymous id for a link, the customer otherwise.
    var key: [UInt8] {
        if case .link = kind { return anonymous }
        return user
    }
}

/// How the instance that read a relayed event judged its time, against the watermark of the shard that read
/// it, which the event's partition holds back: the customer's instance keeps no clock for that partition, and
/// by its own partitions' clock a visitor's on-time event from a partition that lags would be late. Travels as the identity message's
/// `x-event-time` header, which instances that predate it ignore (and receive none of: they judge by their
/// own clock).
enum RelayedEventTime: Equatable, Sendable {
    /// Within the allowed lateness: applied at its own time.
    case onTime
    /// Beyond the allowed lateness, under `--late-events apply`: applied at `atMillis`, the watermark there.
    case late(atMillis: Int64)
    /// Stamped beyond the allowed clock skew, under `--late-events apply`: applied at `atMillis`.
    case future(atMillis: Int64)

    /// The header's name.
    static let header = "x-event-time"

    /// `on_time`, `late:<ms>` or `future:<ms>`.
    var headerValue: String {
        switch self {
        case .onTime: "on_time"
        case .late(let millis): "late:\(millis)"
        case .future(let millis): "future:\(millis)"
        }
    }

    /// The judgement a header value says, or nil when it says none this version knows.
    init?(headerValue: String) {
        if headerValue == "on_time" {
            self = .onTime
            return
        }
        let parts = headerValue.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let millis = Int64(parts[1]) else { return nil }
        switch parts[0] {
        case "late": self = .late(atMillis: millis)
        case "future": self = .future(atMillis: millis)
        default: return nil
        }
    }
}
