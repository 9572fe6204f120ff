/// Names of counter slots (actions, model versions), shared by every shard: models can be
/// swapped while running and their action lists can differ, so counters are keyed by name, not by
/// a model's action index. Registration happens when models load (cold path); the hot path uses
/// slot numbers cached per model.
final class CounterNames: @unchecked Sendable {
    // Sendable: guarded by `names`' lock.
    private let names: Locked<[String]>
    private let capacity: Int

    init(capacity: Int, reserved: [String] = []) {
        self.capacity = capacity
        names = Locked(reserved)
    }

    /// The slot of a name, registering it if new; the last slot collects overflow.
    func slot(for name: String) -> Int {
        names.withLock { list in
            if let i = list.firstIndex(of: name) { return i }
            guard list.count < capacity - 1 else { return capacity - 1 }
            list.append(name)
            return list.count - 1
        }
    }

    /// Registered names, by slot.
    var all: [String] { names.withLock { $0 } }
}
