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
        /// is `user`'s. Between shards of one instance the message itself travels instead.
        case event([UInt8])
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
