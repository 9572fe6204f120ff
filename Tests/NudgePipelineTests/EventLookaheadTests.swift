import Foundation
import NudgeEvents
import NudgeFeatures
@testable import NudgePipeline
@testable import NudgeTraffic
import Testing

/// What one processed message came to, comparable across processors.
private enum Result: Equatable {
    case invalid(DecodeError)
    case duplicate
    case updated
    case outcome(OfferOutcome)
    case decided(json: [UInt8], customer: [UInt8])
    case other(String)

    init(_ outcome: EventOutcome) {
        switch outcome {
        case .invalid(let error): self = .invalid(error)
        case .duplicate: self = .duplicate
        case .updated: self = .updated
        case .outcome(let outcome, _): self = .outcome(outcome)
        case .decided(let json, let customer, _, _): self = .decided(json: Array(json), customer: Array(customer))
        default: self = .other("\(outcome)")
        }
    }
}

private func makeProcessor() throws -> EventProcessor {
    var config = PipelineConfig.syntheticTime
    config.expectedCustomersPerShard = 512
    return EventProcessor(shardIndex: 0, shardCount: 1, config: config,
                          models: ModelStore(try ModelSet.load(directory: repoModels, features: repoFeatures)),
                          features: repoFeatures,
                          counterNames: (CounterNames(capacity: 64, reserved: ["none"]), CounterNames(capacity: 16)),
                          wallClock: { 1_800_000_000_000 })
}

/// Traffic with duplicates, broken messages, anonymous visitors who log in, and out-of-order times.
private func traffic(seed: UInt64, count: Int) -> [(key: String, value: [UInt8])] {
    var settings = TrafficConfig()
    settings.seed = seed
    settings.customers = 300
    settings.duplicateRate = 0.05
    settings.malformedRate = 0.03
    let generator = TrafficGenerator(settings)
    return (0..<count).map { _ in
        let message = generator.next()
        return (String(decoding: message.key, as: UTF8.self), Array(message.value))
    }
}

@Suite struct EventLookaheadTests {
    /// Staging only moves memory into the cache: every outcome (decisions byte for byte) and every
    /// customer's features equal those of a processor that never stages, including when messages the
    /// processor did not stage (as a relayed one is) come in between, and when a batch ends with
    /// staged messages left (cleared).
    @Test(arguments: [1, 2, 3] as [UInt64])
    func stagedProcessingEqualsUnstaged(seed: UInt64) throws {
        let messages = traffic(seed: seed, count: 6_000)
        let plain = try makeProcessor()
        let staged = try makeProcessor()
        var random = Xoshiro256StarStar(seed: seed)
        var i = 0
        var unstagedBetween = 0
        var stagedCount = 0
        while i < messages.count {
            // A batch, as the shard takes one from its queue; sizes include ones shorter than the depth.
            let size = min(Int(random.next() % 40) + 1, messages.count - i)
            let batch = Array(messages[i..<(i + size)])
            let buffers = batch.map { UnsafeMutableRawBufferPointer.allocate(byteCount: $0.value.count, alignment: 1) }
            defer { buffers.forEach { $0.deallocate() } }
            for (buffer, message) in zip(buffers, batch) { buffer.copyMemory(from: message.value.withUnsafeBytes { $0 }) }
            let depth = EventLookahead.depth
            for j in 0..<min(depth, size) { staged.stage(UnsafeRawBufferPointer(buffers[j])) }
            for j in 0..<size {
                if j + depth < size {
                    staged.stage(UnsafeRawBufferPointer(buffers[j + depth]))
                    stagedCount += 1
                }
                if random.next() % 10 == 0 {
                    // A message that was never staged, processed in between by both.
                    let extra = messages[Int(random.next() % UInt64(messages.count))].value
                    let expected = extra.withUnsafeBytes { Result(plain.process($0, route: .forwarded)) }
                    let actual = extra.withUnsafeBytes { Result(staged.process($0, route: .forwarded)) }
                    #expect(actual == expected)
                    unstagedBetween += 1
                }
                let expected = batch[j].value.withUnsafeBytes { Result(plain.process($0, route: .forwarded)) }
                let actual = Result(staged.process(UnsafeRawBufferPointer(buffers[j]), route: .forwarded))
                #expect(actual == expected, "message \(i + j)")
            }
            staged.clearLookahead()
            i += size
        }
        #expect(unstagedBetween > 100 && stagedCount > 3_000)
        #expect(staged.table.count == plain.table.count)
        for key in Set(messages.map(\.key)) where !key.isEmpty {
            #expect(staged.snapshot(of: Array(key.utf8), atMillis: nil) == plain.snapshot(of: Array(key.utf8), atMillis: nil), "customer \(key)")
        }
    }

    /// A staged message that failed to decode is reported as invalid when its turn comes, with the error
    /// the decoder gave, and the messages staged after it are unaffected.
    @Test func aStagedBrokenMessageIsInvalidInItsTurn() throws {
        let processor = try makeProcessor()
        let broken = Array(#"{"type":"track","event":"Product Viewed","messageId":"m-1""#.utf8)
        let good = Array(#"{"type":"page","messageId":"m-2","userId":"c-1","timestamp":"2026-11-30T10:00:00.000Z","channel":"web","properties":{}}"#.utf8)
        try broken.withUnsafeBytes { brokenBytes in
            try good.withUnsafeBytes { goodBytes in
                processor.stage(brokenBytes)
                processor.stage(goodBytes)
                guard case .invalid(let error) = processor.process(brokenBytes, route: .forwarded) else {
                    Issue.record("a broken message must be invalid")
                    return
                }
                let direct = try makeProcessor()
                guard case .invalid(let expected) = direct.process(brokenBytes, route: .forwarded) else { return }
                #expect(error == expected)
                #expect(Result(processor.process(goodBytes, route: .forwarded)) == .updated)
            }
        }
        #expect(processor.table.count == 1)
    }
}
