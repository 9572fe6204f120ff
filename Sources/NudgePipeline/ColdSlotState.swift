import NudgeDecisions
import NudgeEvents
import NudgeFeatures

/// What a shard keeps by store slot that goes with a customer into the cold tier, in their
/// ``ColdAttachment``, and comes back with them: the contacts the contact policy can still count (so that an
/// early eviction does not reset a cap or a cooldown), and the deadline of a silence queued for them (see
/// ``SilenceTimers``).
///
/// Bytes: nothing when there is neither; else a count byte, each contact's event time (8 bytes), channel
/// and action (a byte each), then the silence deadline (8 bytes) if there is one. At most 69 bytes.
struct ColdSlotState {
    /// Contacts kept.
    var contacts: ContactHistory
    /// Event time at which the customer's queued silence comes due, if one is.
    var silenceDeadline: Int64?

    /// State to attach.
    init(contacts: ContactHistory, silenceDeadline: Int64?) {
        self.contacts = contacts
        self.silenceDeadline = silenceDeadline
    }

    /// The state an attachment from ``attachment`` holds; as much as is whole of a damaged one.
    init(_ attachment: ColdAttachment) {
        contacts = ContactHistory()
        silenceDeadline = nil
        var offset = 0
        guard let stored = attachment.read(UInt8.self, at: &offset) else { return }
        for _ in 0..<min(Int(stored), ContactHistory.capacity) {
            guard let time = attachment.read(Int64.self, at: &offset), let channel = attachment.read(UInt8.self, at: &offset),
                  let action = attachment.read(UInt8.self, at: &offset) else { return }
            contacts.record(atMillis: time, channel: Channel(rawValue: channel) ?? .other, action: action)
        }
        silenceDeadline = attachment.read(Int64.self, at: &offset)
    }

    /// The bytes to attach.
    var attachment: ColdAttachment {
        var attachment = ColdAttachment()
        guard contacts.count > 0 || silenceDeadline != nil else { return attachment }
        attachment.append(UInt8(contacts.count))
        for i in 0..<contacts.count {
            guard let contact = contacts.contact(at: i) else { continue }
            attachment.append(contact.atMillis)
            attachment.append(contact.channel.rawValue)
            attachment.append(contact.action)
        }
        if let silenceDeadline { attachment.append(silenceDeadline) }
        return attachment
    }
}

extension ContactHistory {
    /// The contacts with an event time after `cutoffMillis`.
    func kept(after cutoffMillis: Int64) -> ContactHistory {
        var kept = ContactHistory()
        for i in 0..<count {
            guard let contact = contact(at: i), contact.atMillis > cutoffMillis else { continue }
            kept.record(atMillis: contact.atMillis, channel: contact.channel, action: contact.action)
        }
        return kept
    }
}
