@testable import NudgeFeatures
import NudgeTraffic
import Testing

/// The cold tier's own store, with hashes chosen by the test: full collisions, crowded probe runs, the
/// budget and the age order.
@Suite(.timeLimit(.minutes(2))) struct ColdCustomersTests {
    /// Runs `body` with the bytes of `string`.
    static func withBytes<R>(_ string: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        Array(string.utf8).withUnsafeBytes(body)
    }

    static func payload(in cold: ColdCustomers, id: String, hash: UInt64) -> [UInt8]? {
        withBytes(id) { bytes in cold.find(bytes, hash: hash).map { Array(cold.payload(of: $0)) } }
    }

    @discardableResult
    static func insert(_ cold: ColdCustomers, id: String, hash: UInt64, payload: [UInt8]) -> Bool {
        withBytes(id) { bytes in payload.withUnsafeBytes { cold.insert(id: bytes, hash: hash, payload: $0) } }
    }

    static func remove(_ cold: ColdCustomers, id: String, hash: UInt64) -> Bool {
        withBytes(id) { bytes in
            guard let handle = cold.find(bytes, hash: hash) else { return false }
            cold.remove(handle)
            return true
        }
    }

    /// Forty ids with one 64-bit hash: each finds its own payload, removals in the middle of the run leave
    /// the others reachable, and an id not stored is not found.
    @Test func idsSharingAHashAreNotConfused() {
        let cold = ColdCustomers(budgetBytes: 1 << 20)
        let ids = (0..<40).map { "same-\($0)" } + [""]
        for (number, id) in ids.enumerated() { Self.insert(cold, id: id, hash: 42, payload: [UInt8(number), 7]) }
        #expect(cold.count == ids.count)
        for (number, id) in ids.enumerated() { #expect(Self.payload(in: cold, id: id, hash: 42) == [UInt8(number), 7]) }
        #expect(Self.payload(in: cold, id: "same-40", hash: 42) == nil)
        #expect(Self.payload(in: cold, id: "same-1", hash: 43) == nil, "the hash is part of the key")

        for (number, id) in ids.enumerated() where number % 3 == 1 { #expect(Self.remove(cold, id: id, hash: 42)) }
        for (number, id) in ids.enumerated() {
            #expect(Self.payload(in: cold, id: id, hash: 42) == (number % 3 == 1 ? nil : [UInt8(number), 7]))
        }
    }

    /// 30,000 random inserts, removals and lookups over 3,000 ids whose hashes come from eight values
    /// (long shared probe runs, many full collisions), checked against a dictionary, through growth.
    @Test func matchesADictionaryUnderChurn() {
        var random = SplitMix64(seed: 9)
        let cold = ColdCustomers(budgetBytes: 64 << 20)
        var model: [String: [UInt8]] = [:]
        let hash = { (id: String) -> UInt64 in UInt64(id.utf8.reduce(0) { $0 &+ Int($1) } % 8) &* 0x0101_0101_0101_0101 }
        var mismatches = 0
        for step in 0..<30_000 {
            let id = "k\(Int.random(in: 0..<3_000, using: &random))"
            let draw = Int.random(in: 0..<3, using: &random)
            if draw == 0, model[id] == nil {
                let payload = (0..<Int.random(in: 0...40, using: &random)).map { UInt8(truncatingIfNeeded: $0 &+ step) }
                Self.insert(cold, id: id, hash: hash(id), payload: payload)
                model[id] = payload
            } else if draw == 1 {
                if Self.remove(cold, id: id, hash: hash(id)) != (model.removeValue(forKey: id) != nil) { mismatches += 1 }
            } else if Self.payload(in: cold, id: id, hash: hash(id)) != model[id] {
                mismatches += 1
            }
        }
        for (id, payload) in model where Self.payload(in: cold, id: id, hash: hash(id)) != payload { mismatches += 1 }
        #expect(mismatches == 0)
        #expect(cold.count == model.count)
        #expect(cold.dropped == 0)
    }

    /// Over budget, the oldest go first, and a removed (restored) customer no longer counts toward age.
    @Test func theOldestAreDroppedFirst() {
        let cold = ColdCustomers(budgetBytes: 8_192)
        let payload = [UInt8](repeating: 1, count: 40)
        for number in 0..<500 {
            Self.insert(cold, id: "age-\(number)", hash: UInt64(number) &* 0x9E37_79B9_7F4A_7C15, payload: payload)
            #expect(cold.bytesUsed <= cold.budgetBytes)
            if number == 10 { #expect(Self.remove(cold, id: "age-5", hash: 5 &* 0x9E37_79B9_7F4A_7C15)) }
        }
        let kept = (0..<500).filter { Self.payload(in: cold, id: "age-\($0)", hash: UInt64($0) &* 0x9E37_79B9_7F4A_7C15) != nil }
        #expect(kept == Array((500 - kept.count)..<500), "what is left is the newest, contiguous")
        #expect(cold.count == kept.count)
        #expect(cold.dropped == 500 - 1 - kept.count, "every customer neither kept nor removed was dropped")
    }

    /// Budgets below the minimum are raised to it; the empty tier already counts its slab and index.
    @Test func tinyBudgetsAreRaised() {
        let cold = ColdCustomers(budgetBytes: 10)
        #expect(cold.budgetBytes == ColdCustomers.minimumBudget)
        #expect(cold.bytesUsed > 0 && cold.bytesUsed <= cold.budgetBytes / 2)
    }

    /// `find(hash:)` finds a customer by hash alone, the first of the run when ids share it, and hands its id.
    @Test func aHashAloneFindsACustomerAndItsId() {
        let cold = ColdCustomers(budgetBytes: 1 << 20)
        Self.insert(cold, id: "first", hash: 42, payload: [1])
        Self.insert(cold, id: "second", hash: 42, payload: [2])
        Self.insert(cold, id: "other", hash: 43, payload: [3])
        let found = cold.find(hash: 42)
        #expect(found.map { Array(cold.id(of: $0)) } == Array("first".utf8))
        #expect(found.map { Array(cold.payload(of: $0)) } == [1])
        #expect(cold.find(hash: 43).map { Array(cold.id(of: $0)) } == Array("other".utf8))
        #expect(cold.find(hash: 44) == nil)
        #expect(Self.remove(cold, id: "first", hash: 42))
        #expect(cold.find(hash: 42).map { Array(cold.id(of: $0)) } == Array("second".utf8))
    }
}

/// The cold payload: the attachment, uncompressed, before the record's LZ4 block.
@Suite struct ColdRecordCodecTests {
    @Test func aRecordAndAFullAttachmentComeBackExactly() throws {
        let layout = FeatureSet.standard.layout
        let codec = layout.template.withUnsafeBytes { ColdRecordCodec(template: $0) }
        var record = layout.template
        for i in stride(from: CustomerRecord.headerSize, to: record.count, by: 7) { record[i] = UInt8(truncatingIfNeeded: i) }
        record.withUnsafeMutableBytes { $0.storeBytes(of: 0, toByteOffset: CustomerRecord.idOffset, as: Int64.self) }
        record.withUnsafeMutableBytes { $0.storeBytes(of: 0, toByteOffset: CustomerRecord.idLength, as: UInt32.self) }
        for size in [0, 1, ColdAttachment.capacity] {
            var attachment = ColdAttachment()
            for i in 0..<size { attachment.append(UInt8(255 - i)) }
            let payload = try #require(record.withUnsafeBytes { codec.encode($0.baseAddress!) { attachment } }.map(Array.init))
            #expect(payload.first == UInt8(size))
            var back = [UInt8](repeating: 0xAA, count: record.count)
            let read = payload.withUnsafeBytes { bytes in back.withUnsafeMutableBytes { codec.decode(bytes, into: $0.baseAddress!) } }
            #expect(read == attachment, "attachment of \(size) bytes")
            #expect(back == record, "record with an attachment of \(size) bytes")
            // Damaged: cut short of the attachment its length byte announces, or of the block.
            let short = Array(payload.prefix(size))
            #expect(short.withUnsafeBytes { bytes in back.withUnsafeMutableBytes { codec.decode(bytes, into: $0.baseAddress!) } } == nil)
            let cut = Array(payload.dropLast())
            #expect(cut.withUnsafeBytes { bytes in back.withUnsafeMutableBytes { codec.decode(bytes, into: $0.baseAddress!) } } == nil)
        }
        var tooLong = [UInt8(ColdAttachment.capacity + 1)] + [UInt8](repeating: 0, count: 200)
        #expect(tooLong.withUnsafeMutableBytes { ColdRecordCodec.attachment(of: UnsafeRawBufferPointer($0)) } == nil)
        #expect([UInt8]().withUnsafeBytes { ColdRecordCodec.attachment(of: $0) } == nil)
    }

    @Test func attachmentsWithOtherBytesDiffer() {
        var one = ColdAttachment()
        var other = ColdAttachment()
        one.append(UInt32(1))
        other.append(UInt32(2))
        #expect(one != other)
        other = ColdAttachment()
        other.append(UInt16(1))
        #expect(one != other)
        other.append(UInt16(0))
        #expect(one == other)
    }
}
