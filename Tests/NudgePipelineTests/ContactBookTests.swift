import NudgeDecisions
import NudgeEvents
@testable import NudgePipeline
@testable import NudgeTraffic
import Testing

@Suite struct ContactBookTests {
    /// Random records, merges and frees on a sparse book read back exactly as one dense history per slot,
    /// and freed histories are reused rather than the pool growing.
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func readsLikeOneHistoryPerSlot(seed: UInt64) {
        var random = Xoshiro256StarStar(seed: seed)
        var book = ContactBook()
        var dense = [ContactHistory](repeating: ContactHistory(), count: 64)
        var peak = 0
        for step in 0..<5_000 {
            let slot = Int(random.next() % 64)
            switch random.next() % 10 {
            case 0, 1:
                #expect(book.take(slot) == dense[slot], "step \(step)")
                dense[slot] = ContactHistory()
            case 2:
                var other = ContactHistory()
                for k in 0..<Int(random.next() % 4) { other.record(atMillis: Int64(step * 10 + k), channel: .email, action: UInt8(k)) }
                book.absorb(other, into: slot)
                dense[slot].absorb(other)
            default:
                let channel = Channel.allCases[Int(random.next() % UInt64(Channel.allCases.count))]
                let at = Int64(random.next() % 1_000_000)
                let action = UInt8(random.next() % 5)
                book.record(slot: slot, atMillis: at, channel: channel, action: action)
                dense[slot].record(atMillis: at, channel: channel, action: action)
            }
            peak = max(peak, book.count)
            #expect(book.count == dense.filter { $0.count > 0 }.count)
        }
        for slot in 0..<64 { #expect(book[slot] == dense[slot]) }
        #expect(book[-1] == ContactHistory() && book[1_000] == ContactHistory())
        // Frees are reused: the pool never holds more histories than were ever live at once.
        #expect(book.bytesUsed < 64 * 4 + (peak + 16) * MemoryLayout<ContactHistory>.stride * 2 + 64 * 4 * 2)
    }

    /// A slot that was never contacted costs a handle, not a history.
    @Test func uncontactedSlotsHoldNoHistory() {
        var book = ContactBook()
        book.record(slot: 9_999, atMillis: 1, channel: .push, action: 1)
        #expect(book.count == 1)
        #expect(book[9_999].count == 1 && book[0].count == 0)
        #expect(book.bytesUsed < 10_000 * 4 * 2 + 4 * MemoryLayout<ContactHistory>.stride)
    }
}
