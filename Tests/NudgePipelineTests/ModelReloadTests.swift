import Foundation
import NudgeEvents
import NudgeFeatures
import NudgeKafka
import Testing
@testable import NudgePipeline

/// Rewrites a model file's version (and optionally breaks it), as a data scientist dropping a file in would.
/// A fresh temporary models directory holding the repository's churn and NBA models, and with
/// `withChallengers` a challenger copy of each (version "challenger"). The caller removes it.
private func modelDirectory(withChallengers: Bool) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-models-\(UUID())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for f in ["churn.json", "nba.json"] { try FileManager.default.copyItem(atPath: "\(repoModels)/\(f)", toPath: "\(dir)/\(f)") }
    if withChallengers {
        try writeModel(from: "\(dir)/churn.json", to: "\(dir)/churn.challenger.json", version: "challenger")
        try writeModel(from: "\(dir)/nba.json", to: "\(dir)/nba.challenger.json", version: "challenger")
    }
    return dir
}

private func writeModel(from source: String, to path: String, version: String, corrupt: Bool = false) throws {
    var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: source))) as? [String: Any])
    json["version"] = version
    if corrupt { json["features"] = ((json["features"] as? [String]) ?? []) + ["no_such_feature"] }
    let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
    // Write then rename: the watcher never sees half a file.
    try data.write(to: URL(fileURLWithPath: path + ".tmp"))
    #expect(rename(path + ".tmp", path) == 0)
}

@Suite("Model hot reload and challenger", .serialized)
struct ModelReloadTests {
    @Test func validFileSwapsInvalidFileIsRefusedAndOldKeepsServing() throws {
        let dir = try modelDirectory(withChallengers: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        let topics = TopicNames()
        try cluster.createTopics(topics, partitions: 1, outputPartitions: 1)
        var config = PipelineConfig.syntheticTime
        config.shards = 1
        config.groupId = "reload"
        config.modelDirectory = dir
        config.modelCheckInterval = .milliseconds(100)
        let pipeline = try makePipeline(config, bootstrap: cluster.bootstrapServers, models: dir)
        try pipeline.start()
        let original = pipeline.modelStore.models.nba.identity.description

        func decide(_ id: String) throws -> String? {
            try produceAll(bootstrap: cluster.bootstrapServers,
                           [(topics.clickstream, "c-1", track("Product Added", user: "c-1", id: id, at: "2026-11-20T10:00:00Z"))])
            let recs = try readAll(bootstrap: cluster.bootstrapServers, topics: [topics.recommendations]) { got in
                got.contains { ($0.json?["trigger"] as? [String: Any])?["message_id"] as? String == id }
            }
            let rec = recs.first { ($0.json?["trigger"] as? [String: Any])?["message_id"] as? String == id }
            return (rec?.json?["models"] as? [String: Any])?["nba"] as? String
        }
        #expect(try decide("r-1") == original)

        try writeModel(from: "\(dir)/nba.json", to: "\(dir)/nba.json", version: "2099-01-01.1")
        let deadline = ContinuousClock.now + .seconds(10)
        while pipeline.modelStore.models.nba.identity.version != "2099-01-01.1" && ContinuousClock.now < deadline { usleep(50_000) }
        #expect(try decide("r-2") == "nba@2099-01-01.1")

        try writeModel(from: "\(dir)/nba.json", to: "\(dir)/nba.json", version: "2099-01-02.1", corrupt: true)
        while pipeline.modelStore.refusals.load(ordering: .relaxed) == 0 && ContinuousClock.now < deadline + .seconds(5) { usleep(50_000) }
        #expect(pipeline.modelStore.refusals.load(ordering: .relaxed) == 1)
        #expect(try decide("r-3") == "nba@2099-01-01.1")   // the last good model keeps serving
        #expect(pipeline.snapshot().models["nba"] == "nba@2099-01-01.1")
        pipeline.stop()
    }

    @Test func challengerSplitIsStablePerCustomerAndNearTheShare() throws {
        let dir = try modelDirectory(withChallengers: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let models = try ModelSet.load(directory: dir, features: repoFeatures, challengerShare: 0.2)
        #expect(models.versions["nba_challenger"] == "nba@challenger")
        var chosen = 0
        for i in 0..<20_000 {
            let id = Array("c-\(i)".utf8)
            let hash = id.withUnsafeBytes { nudgeHash64($0) }
            let first = models.usesChallenger(customerHash: hash)
            #expect(first == models.usesChallenger(customerHash: hash))
            if first { chosen += 1 }
        }
        #expect(abs(Double(chosen) / 20_000 - 0.2) < 0.02)
        // A lone challenger file is refused rather than silently ignored.
        try FileManager.default.removeItem(atPath: "\(dir)/churn.challenger.json")
        #expect(throws: (any Error).self) { try ModelSet.load(directory: dir, features: repoFeatures) }
    }

    /// Outcome events count toward the model version that decides for the customer (champion or
    /// challenger, by the customer's stable group), so acceptance compares by version.
    @Test func outcomesCountTowardTheModelThatDecidesForTheCustomer() throws {
        let dir = try modelDirectory(withChallengers: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let models = try ModelSet.load(directory: dir, features: repoFeatures, challengerShare: 0.3)
        var config = PipelineConfig.syntheticTime
        config.expectedCustomersPerShard = 1_024
        let modelNames = CounterNames(capacity: 16)
        let processor = EventProcessor(shardIndex: 0, shardCount: 1, config: config, models: ModelStore(models), features: repoFeatures,
                                       counterNames: (CounterNames(capacity: 64, reserved: ["none"]), modelNames),
                                       wallClock: { 1_800_000_000_000 })
        var slotsSeen = Set<Int>()
        var outcomes: [OfferOutcome] = []
        for i in 0..<300 {
            let customer = "c-\(i)"
            let at = ISO8601Time.format(millis: 1_790_000_000_000 + Int64(i) * 1_000)
            let add = track("Product Added", user: customer, id: "add-\(i)", at: at, properties: #"{"product_id":"p-1","price":25.0}"#)
            guard case .decided(_, _, _, let decidedBy) = add.withUnsafeBytes({ processor.process($0, route: .forwarded) }) else {
                Issue.record("Product Added made no decision for \(customer)")
                continue
            }
            let name = ["Offer Delivered", "Offer Viewed", "Offer Accepted", "Offer Dismissed"][i % 4]
            let answer = track(name, user: customer, id: "out-\(i)", at: at, properties: #"{"recommendation_id":"r-1","action":"cart_reminder"}"#)
            guard case .outcome(let outcome, let countedFor) = answer.withUnsafeBytes({ processor.process($0, route: .forwarded) }) else {
                Issue.record("\(name) was not counted as an outcome")
                continue
            }
            #expect(countedFor == decidedBy, "\(customer): outcome counted for another model than the one deciding")
            slotsSeen.insert(countedFor)
            outcomes.append(outcome)
        }
        // Both groups are exercised, and each outcome event maps to its own kind.
        #expect(Set(slotsSeen.map { modelNames.all[$0] }) == ["nba@challenger", models.nba.identity.description])
        #expect(outcomes.count == 300 && OfferOutcome.allCases.allSatisfy { kind in outcomes.filter { $0 == kind }.count == 75 })
    }
}
