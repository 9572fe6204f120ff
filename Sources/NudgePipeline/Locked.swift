import Foundation

/// A value behind a pthread mutex (NSLock). Used instead of `Synchronization.Mutex` for state
/// off the hot path because Thread Sanitizer understands pthread locks but not Mutex's raw
/// futex, and the concurrency tests run under it.
final class Locked<Value>: @unchecked Sendable {
    // Sendable: every access goes through `lock`.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    /// Runs `body` with exclusive access to the value.
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
