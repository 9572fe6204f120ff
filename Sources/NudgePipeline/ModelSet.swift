import Atomics
import Foundation
import Logging
import NudgeDecisions
import NudgeEvents
import NudgeFeatures
import NudgeKafka
import NudgeModels

/// The models and policy that decide, loaded and validated together against the feature schema:
/// a champion pair, and optionally a challenger pair that scores a stable share of customers.
public struct ModelSet: Sendable {
    /// Churn model.
    public let churn: ChurnModel
    /// Next-best-action model.
    public let nba: NBAModel
    /// Contact caps and cooldowns.
    public let policy: ContactPolicy
    /// Challenger models (`churn.challenger.json`, `nba.challenger.json`), if present.
    public let challenger: (churn: ChurnModel, nba: NBAModel)?
    /// Share of customers (by a stable hash of their id) the challenger scores, 0...1.
    public let challengerShare: Double

    /// Wraps already-loaded models.
    public init(churn: ChurnModel, nba: NBAModel, policy: ContactPolicy = .default,
                challenger: (churn: ChurnModel, nba: NBAModel)? = nil, challengerShare: Double = 0) {
        self.churn = churn
        self.nba = nba
        self.policy = policy
        self.challenger = challenger
        self.challengerShare = challenger == nil ? 0 : min(1, max(0, challengerShare))
    }

    /// The model files a directory may hold.
    public static let fileNames = ["churn.json", "nba.json", "churn.challenger.json", "nba.challenger.json"]

    /// Loads `churn.json` and `nba.json` (and the challenger pair if both files exist) from a
    /// directory, validated against the features' names. Errors name the file and field.
    public static func load(directory: String, features: FeatureSet, policy: ContactPolicy = .default,
                            challengerShare: Double = 0.1) throws -> ModelSet {
        let schema = FeatureSchema(names: features.names, definitions: features.signatures)
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        func read(_ name: String) throws -> Data {
            guard let data = FileManager.default.contents(atPath: path(name)) else {
                throw ModelFileError(file: path(name), field: "(file)", problem: "cannot read the file; is --models pointing at the models/ directory?")
            }
            return data
        }
        let churn = try ModelFile.loadChurn(read("churn.json"), file: path("churn.json"), schema: schema)
        let nba = try ModelFile.loadNBA(read("nba.json"), file: path("nba.json"), schema: schema)
        var challenger: (ChurnModel, NBAModel)?
        let fm = FileManager.default
        if fm.fileExists(atPath: path("churn.challenger.json")) || fm.fileExists(atPath: path("nba.challenger.json")) {
            // A challenger needs both files; a lone one is a mistake worth refusing loudly.
            challenger = (try ModelFile.loadChurn(read("churn.challenger.json"), file: path("churn.challenger.json"), schema: schema),
                          try ModelFile.loadNBA(read("nba.challenger.json"), file: path("nba.challenger.json"), schema: schema))
        }
        return ModelSet(churn: churn, nba: nba, policy: policy, challenger: challenger, challengerShare: challengerShare)
    }

    /// Deciders for this set: the champion's, and the challenger's if any.
    func makeDeciders() -> (champion: Decider, challenger: Decider?) {
        (Decider(churn: churn, nba: nba, policy: policy),
         challenger.map { Decider(churn: $0.churn, nba: $0.nba, policy: policy) })
    }

    /// Whether a customer is scored by the challenger: stable per customer across restarts and
    /// instances (a fixed hash of the id), so one customer never sees both models.
    @inline(__always) func usesChallenger(customerHash: UInt64) -> Bool {
        challenger != nil && Double((customerHash >> 11) % 10_000) < challengerShare * 10_000
    }

    /// Loaded versions, as published in metrics (`name@version`).
    public var versions: [String: String] {
        var v = ["churn": churn.identity.description, "nba": nba.identity.description]
        if let c = challenger {
            v["churn_challenger"] = c.churn.identity.description
            v["nba_challenger"] = c.nba.identity.description
        }
        return v
    }
}

/// The models in force, swappable while the service runs. Shards notice a new generation between
/// batches and swap in one step, so no event is scored half by one model and half by another.
public final class ModelStore: @unchecked Sendable {
    // Sendable: the set is behind a lock; the generation is atomic.
    private let current: Locked<ModelSet>
    /// Bumped on every successful swap.
    let generation = ManagedAtomic<Int>(0)
    /// Successful reloads and refused files since start.
    let reloads = ManagedAtomic<Int>(0)
    let refusals = ManagedAtomic<Int>(0)

    /// Starts with `models`.
    public init(_ models: ModelSet) { current = Locked(models) }

    /// The set in force.
    public var models: ModelSet { current.withLock { $0 } }

    /// Installs a new set.
    public func replace(with models: ModelSet) {
        current.withLock { $0 = models }
        generation.wrappingIncrement(ordering: .releasing)
        reloads.wrappingIncrement(ordering: .relaxed)
    }
}

/// Watches the model directory and swaps in new files once they validate. A file that does not
/// is refused with a log line naming the field, and the models in force keep serving.
final class ModelWatcher: @unchecked Sendable {
    // Sendable: `lastSeen` is touched only by the watcher thread; stop is atomic.
    private let directory: String
    private let features: FeatureSet
    private let store: ModelStore
    private let logger: Logger
    private let interval: Duration
    private let challengerShare: Double
    private let stopping = ManagedAtomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private var thread: BlockingThread?
    private var lastSeen: [String: String] = [:]

    init(directory: String, features: FeatureSet, store: ModelStore, challengerShare: Double, interval: Duration, logger: Logger) {
        self.directory = directory
        self.features = features
        self.store = store
        self.challengerShare = challengerShare
        self.interval = interval
        self.logger = logger
        lastSeen = fingerprint()
    }

    func start() {
        thread = BlockingThread(name: "nudge-models") { [self] in
            let ms = Int(interval.wholeMilliseconds)
            while !stopping.load(ordering: .relaxed) {
                _ = wake.wait(timeout: .now() + .milliseconds(max(50, ms)))
                if stopping.load(ordering: .relaxed) { return }
                checkOnce()
            }
        }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        wake.signal()
        thread?.join()
    }

    /// Reloads if any model file changed since the last look. Returns true when a swap happened.
    @discardableResult
    func checkOnce() -> Bool {
        let now = fingerprint()
        guard now != lastSeen else { return false }
        lastSeen = now
        do {
            let models = try ModelSet.load(directory: directory, features: features, challengerShare: challengerShare)
            store.replace(with: models)
            logger.notice("models reloaded: \(models.versions.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))")
            return true
        } catch {
            store.refusals.wrappingIncrement(ordering: .relaxed)
            logger.error("model files refused, still serving \(store.models.versions.values.sorted().joined(separator: ", ")): \(error)")
            return false
        }
    }

    /// Size and modification time of each model file: a change in any means "look again".
    private func fingerprint() -> [String: String] {
        var out: [String: String] = [:]
        for name in ModelSet.fileNames {
            let path = (directory as NSString).appendingPathComponent(name)
            if let a = try? FileManager.default.attributesOfItem(atPath: path) {
                out[name] = "\(a[.size] ?? 0)@\((a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
            }
        }
        return out
    }
}
