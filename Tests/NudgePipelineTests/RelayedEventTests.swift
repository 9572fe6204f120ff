import NudgeEvents
@testable import NudgePipeline
import Testing

/// Events another instance relays through the identity topic to the instance of the customer their
/// anonymous id is linked to.
@Suite struct RelayedEventTests {
    /// The shard of `user` and another one, of a two-shard cluster.
    private func shards(for user: String) throws -> (cluster: ShardCluster, owner: EventProcessor, other: EventProcessor) {
        let cluster = try ShardCluster(shards: 2)
        let owner = cluster.owner(user)
        return (cluster, cluster.processors[owner], cluster.processors[1 - owner])
    }

    private func relay(_ bytes: [UInt8], to user: String, via processor: EventProcessor) -> EventOutcome {
        Array(user.utf8).withUnsafeBytes { u in bytes.withUnsafeBytes { processor.process($0, route: .relayed, partition: -1, relayedUser: u) } }
    }

    @Test func aRelayedEventReachesTheCustomerItNamesWithoutALinkHereAndOnlyOnce() throws {
        let (_, owner, other) = try shards(for: "u-1")
        let event = track("Product Added", user: nil, anonymous: "a-1", id: "m-1", at: ISO8601Time.format(millis: t0),
                          properties: #"{"product_id":"p-1","price":25.0}"#)
        // This instance holds no link for a-1 (lost in a restart, or expired sooner than on the relaying side).
        let first = relay(event, to: "u-1", via: owner)
        #expect(owner.identityMisses == 0)
        let customer = try #require(owner.snapshot(of: Array("u-1".utf8), atMillis: nil), "the event was not applied to u-1")
        #expect(customer[feature: "adds_24h"] == 1)
        #expect(owner.snapshot(of: Array("a-1".utf8), atMillis: nil) == nil, "a phantom customer under the anonymous id")
        // Product Added decides: the recommendation's key is the customer, still readable after the relayed
        // message (and the user id it carried) is gone.
        guard case .decided(_, let key, _, _) = first else {
            Issue.record("the first relay made no decision: \(first)")
            return
        }
        _ = Array(repeating: UInt8(0x5a), count: 4_096)  // reuse freed memory, if the key pointed into it
        #expect(String(decoding: key, as: UTF8.self) == "u-1")
        // Relayed again by an instance that crashed before committing: dropped here.
        guard case .duplicate = relay(event, to: "u-1", via: owner) else {
            Issue.record("a relayed event repeated was applied again")
            return
        }
        #expect(owner.snapshot(of: Array("u-1".utf8), atMillis: nil)?[feature: "adds_24h"] == 1)
        // Reaching a shard that does not own the customer, it goes to the one that does.
        let elsewhere = track("Product Viewed", user: nil, anonymous: "a-1", id: "m-2", at: ISO8601Time.format(millis: t0 + 1_000))
        guard case .aliased = relay(elsewhere, to: "u-1", via: other) else {
            Issue.record("a relayed event for another shard's customer was not handed on")
            return
        }
    }
}
