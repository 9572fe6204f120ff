import NudgeFeatures
import NudgeTraffic
import Testing

/// The id arena shared by the customer table, identity links and cart timers: ids survive every move, dead
/// bytes are dropped, and the arena stays within its bound.
@Suite struct IdArenaTests {
    /// An owner's records: offset and bytes of each live id, in a dictionary (the reference).
    final class Owner {
        var ids: [Int: (offset: Int, bytes: [UInt8])] = [:]
        var moves = 0
        func relocate(_ move: (Int, Int) -> Int) {
            moves += 1
            for key in ids.keys.sorted() {
                guard let id = ids[key] else { continue }
                ids[key] = (move(id.offset, id.bytes.count), id.bytes)
            }
        }
    }

    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func randomAppendsAndFreesKeepEveryLiveId(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var arena = IdArena(capacity: 64)
        let owner = Owner()
        var next = 0
        var peakLive = 0
        for _ in 0..<20_000 {
            if owner.ids.isEmpty || random.next(upperBound: 3 as UInt64) > 0 {
                // Lengths up to 200, including empty ids, so moves happen at many fill levels.
                let bytes = (0..<Int(random.next(upperBound: 201 as UInt64))).map { _ in UInt8(truncatingIfNeeded: random.next() as UInt64) }
                let offset = bytes.withUnsafeBytes { arena.append($0, relocatingLive: owner.relocate) }
                owner.ids[next] = (offset, bytes)
                next += 1
            } else {
                let keys = owner.ids.keys.sorted()
                let key = keys[Int(random.next(upperBound: UInt64(keys.count)))]
                arena.free(owner.ids[key]?.bytes.count ?? 0)
                owner.ids[key] = nil
            }
            let live = owner.ids.values.reduce(0) { $0 + $1.bytes.count }
            peakLive = max(peakLive, live)
            #expect(arena.used - arena.dead == live, "used minus dead is the live bytes")
            #expect(arena.capacity <= max(64, 4 * peakLive + 400), "within about four times the peak live bytes")
        }
        var wrong = 0
        for id in owner.ids.values where Array(arena.bytes(at: id.offset, count: id.bytes.count)) != id.bytes { wrong += 1 }
        #expect(wrong == 0, "every live id reads back after \(owner.moves) moves")
        #expect(owner.moves > 10, "the test moved the arena")
    }

    @Test func growsByCopyingWithoutDeadBytesAndReusesItsRoomWithThem() {
        var arena = IdArena(capacity: 64)
        let owner = Owner()
        let first = [UInt8](repeating: 1, count: 40)
        owner.ids[0] = (first.withUnsafeBytes { arena.append($0, relocatingLive: owner.relocate) }, first)
        // Full, nothing dead: grows by copying; the owner is not asked.
        let second = [UInt8](repeating: 2, count: 40)
        owner.ids[1] = (second.withUnsafeBytes { arena.append($0, relocatingLive: owner.relocate) }, second)
        #expect(owner.moves == 0)
        #expect(arena.capacity == 128)
        // Both gone: the next id that does not fit moves the arena, at the same size, holding only itself.
        arena.free(40)
        arena.free(40)
        owner.ids = [:]
        let third = [UInt8](repeating: 3, count: 60)
        let offset = third.withUnsafeBytes { arena.append($0, relocatingLive: owner.relocate) }
        #expect(owner.moves == 1)
        #expect(arena.capacity == 128)
        #expect(offset == 0)
        #expect(arena.used == 60 && arena.dead == 0)
        #expect(Array(arena.bytes(at: offset, count: 60)) == third)
    }
}
