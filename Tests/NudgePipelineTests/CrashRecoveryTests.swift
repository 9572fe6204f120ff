import Foundation
import NudgeKafka
import Testing

/// The `nudge` executable built beside this test bundle.
private let nudgeBinary: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/nudge").path
}()

/// A child process whose first stdout line is read (the broker prints its address).
private final class Child {
    let process = Process()
    init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: nudgeBinary)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
    }
    func start() throws { try process.run() }
    func firstLine() throws -> String {
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        var line = Data()
        while let b = try pipe.fileHandleForReading.read(upToCount: 1), !b.isEmpty, b != Data("\n".utf8) { line.append(b) }
        return String(decoding: line, as: UTF8.self)
    }
    func kill9() { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    func terminate() { process.terminate(); process.waitUntilExit() }
}

@Suite("Crash recovery (kill -9) with real processes", .serialized)
struct CrashRecoveryTests {
    @Test func killedInstanceLosesNoDecision() throws {
        #expect(FileManager.default.isExecutableFile(atPath: nudgeBinary), "build the nudge executable first (swift build)")
        let broker = try Child(["broker", "--partitions", "16", "--log-level", "error"])
        let bootstrap = try broker.firstLine()
        defer { broker.terminate() }

        // 20,000 events for 1,000 customers; every 4th is a trigger (Product Added).
        var input: [(topic: String, key: String, value: [UInt8])] = []
        var triggers = Set<String>()
        for i in 0..<20_000 {
            let customer = "c-\(i % 1_000)"
            let second = i / 1_000
            let kind = i % 4 == 0 ? "Product Added" : "Product Viewed"
            let id = "crash-\(i)"
            if i % 4 == 0 { triggers.insert(id) }
            input.append(("events.clickstream", customer,
                          track(kind, user: customer, id: id, at: String(format: "2026-11-20T10:%02d:%02d.000Z", second / 60, second % 60),
                                properties: #"{"product_id":"p-1","price":9.5}"#)))
        }
        try produceAll(bootstrap: bootstrap, input)

        let args = ["run", "--brokers", bootstrap, "--group", "crash", "--models", repoModels, "--http-port", "0",
                    "--shards", "2", "--log-level", "error"]
        let first = try Child(args)
        try first.start()
        // Let it decide some, then kill it without any chance to commit or flush.
        _ = try readAll(bootstrap: bootstrap, topics: ["nba.recommendations"], timeout: .seconds(60)) { $0.count >= 1_000 }
        first.kill9()

        let afterCrash = try committedTotal(bootstrap: bootstrap, group: "crash", topic: "events.clickstream")
        #expect(afterCrash.end == Int64(input.count))
        #expect(afterCrash.committed < afterCrash.end, "the kill came after everything was committed: the test proved nothing")

        let second = try Child(args)
        try second.start()
        let decided = try readAll(bootstrap: bootstrap, topics: ["nba.recommendations"], timeout: .seconds(120)) { got in
            Set(got.compactMap { ($0.json?["trigger"] as? [String: Any])?["message_id"] as? String }).count >= triggers.count
        }
        second.terminate()  // SIGTERM: graceful, commits
        let seen = Set(decided.compactMap { ($0.json?["trigger"] as? [String: Any])?["message_id"] as? String })
        #expect(seen == triggers, "lost \(triggers.subtracting(seen).count) decisions")
        let end = try committedTotal(bootstrap: bootstrap, group: "crash", topic: "events.clickstream")
        #expect(end.committed == end.end)
        // The recommendation ids of re-processed triggers repeat, so channels can deduplicate.
        let idsByTrigger = Dictionary(grouping: decided.compactMap { $0.json }) { (($0["trigger"] as? [String: Any])?["message_id"] as? String) ?? "" }
        #expect(idsByTrigger.values.allSatisfy { Set($0.compactMap { $0["recommendation_id"] as? String }).count == 1 })
        print("crash recovery: committed \(afterCrash.committed)/\(afterCrash.end) at the kill; \(decided.count) recommendations for \(triggers.count) triggers after restart")
    }
}
