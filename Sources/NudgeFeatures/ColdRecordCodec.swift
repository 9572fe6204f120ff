import CLZ4

/// Turns a customer record and its ``ColdAttachment`` into the compact bytes the cold tier keeps, and back,
/// exactly: one byte of attachment length, the attachment, then the record's LZ4 block.
///
/// A record is XORed with the table's fresh-record template before LZ4: every field still in its "never
/// seen" state (empty buckets, and the ±∞ of empty min/max buckets) becomes zero, so an idle customer's
/// record is mostly runs of zeros. The identity fields of the header are zeroed too: they locate the id in
/// the hot tier's arena, which the cold tier does not share; the table rewrites them on restore.
///
/// Each record is its own LZ4 stream, reset with `LZ4_resetStream_fast` on a state kept for the codec's
/// life: `LZ4_compress_default` clears a 16 KiB state on every call, which made eviction a third slower.
/// The blocks are ordinary independent LZ4 blocks, read back with `LZ4_decompress_safe`.
///
/// One codec per table, used by its single writer: the state and scratch make it allocation-free and not
/// `Sendable`.
final class ColdRecordCodec {
    /// Bytes per record.
    let stride: Int
    private let template: UnsafeMutableRawPointer
    /// The record XOR the template, the input of LZ4.
    private let delta: UnsafeMutableRawPointer
    /// The payload: LZ4's output from `blockOffset`, with room for any record (`LZ4_compressBound`), so
    /// compression cannot fail for space; the attachment and its length byte end right before it.
    private let compressed: UnsafeMutableRawPointer
    private let compressedCapacity: Int
    /// Where LZ4's output starts in `compressed`: past the longest attachment and its length byte.
    private static let blockOffset = 1 + ColdAttachment.capacity
    /// LZ4's compression state, made by the first eviction (a table that never evicts does not hold its
    /// 16 KiB); nil after that only if liblz4 could not allocate it, and then nothing is evicted.
    private var stream: UnsafeMutablePointer<LZ4_stream_t>?

    /// A codec for records of `template.count` bytes (a multiple of 8) that start as `template`.
    init(template: UnsafeRawBufferPointer) {
        stride = template.count
        self.template = .allocate(byteCount: max(stride, 8), alignment: 16)
        if let source = template.baseAddress { self.template.copyMemory(from: source, byteCount: stride) }
        delta = .allocate(byteCount: max(stride, 8), alignment: 16)
        compressedCapacity = Int(LZ4_compressBound(Int32(clamping: stride)))
        compressed = .allocate(byteCount: Self.blockOffset + compressedCapacity, alignment: 16)
    }

    deinit {
        if let stream { LZ4_freeStream(stream) }
        template.deallocate()
        delta.deallocate()
        compressed.deallocate()
    }

    /// Bytes the codec holds (template, scratch and LZ4 state).
    var bytesUsed: Int { 2 * stride + Self.blockOffset + compressedCapacity + (stream == nil ? 0 : Int(LZ4_sizeofState())) }

    /// The payload of `record` with the attachment `attach` gives, valid until the next call; nil only if LZ4
    /// has no state or reports an error. `attach` is called only once the record is compressed, so an owner
    /// that moves its state into the attachment never loses it to a failed eviction.
    func encode(_ record: UnsafeRawPointer, attach: () -> ColdAttachment = { ColdAttachment() }) -> UnsafeRawBufferPointer? {
        if stream == nil { stream = LZ4_createStream() }
        guard let stream else { return nil }
        xor(record, into: delta)
        delta.storeBytes(of: 0, toByteOffset: CustomerRecord.idOffset, as: Int64.self)
        delta.storeBytes(of: 0, toByteOffset: CustomerRecord.idLength, as: UInt32.self)
        LZ4_resetStream_fast(stream)
        let written = LZ4_compress_fast_continue(stream, delta.assumingMemoryBound(to: CChar.self),
                                                 (compressed + Self.blockOffset).assumingMemoryBound(to: CChar.self),
                                                 Int32(clamping: stride), Int32(clamping: compressedCapacity), 1)
        guard written > 0 else { return nil }
        // The attachment and its length go right before the block, so the payload is one run.
        let attachment = attach()
        let start = Self.blockOffset - 1 - attachment.count
        compressed.storeBytes(of: UInt8(attachment.count), toByteOffset: start, as: UInt8.self)
        attachment.withUnsafeBytes { bytes in
            if let source = bytes.baseAddress { (compressed + start + 1).copyMemory(from: source, byteCount: bytes.count) }
        }
        return UnsafeRawBufferPointer(start: compressed + start, count: Self.blockOffset - start + Int(written))
    }

    /// Writes the record `payload` encodes into `record` (all `stride` bytes, identity fields zero) and returns
    /// its attachment; nil if the payload is not a whole record, and then `record` holds unspecified bytes.
    func decode(_ payload: UnsafeRawBufferPointer, into record: UnsafeMutableRawPointer) -> ColdAttachment? {
        guard let source = payload.baseAddress, payload.count <= Int(Int32.max),
              let attachment = Self.attachment(of: payload) else { return nil }
        let start = 1 + attachment.count
        let read = LZ4_decompress_safe((source + start).assumingMemoryBound(to: CChar.self), record.assumingMemoryBound(to: CChar.self),
                                       Int32(payload.count - start), Int32(clamping: stride))
        guard Int(read) == stride else { return nil }
        xor(record, into: record)
        return attachment
    }

    /// The attachment of `payload`, read without decompressing the record; nil if the payload is too short
    /// to hold the attachment its length byte announces.
    static func attachment(of payload: UnsafeRawBufferPointer) -> ColdAttachment? {
        guard let length = payload.first, 1 + Int(length) <= payload.count else { return nil }
        return ColdAttachment(bytes: UnsafeRawBufferPointer(rebasing: payload[1..<1 + Int(length)]))
    }

    /// `output = record XOR template`, a word at a time (`stride` is a multiple of 8; both are 8-aligned).
    private func xor(_ record: UnsafeRawPointer, into output: UnsafeMutableRawPointer) {
        var offset = 0
        while offset + 8 <= stride {
            let word = record.load(fromByteOffset: offset, as: UInt64.self) ^ template.load(fromByteOffset: offset, as: UInt64.self)
            output.storeBytes(of: word, toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        while offset < stride {
            let byte = record.load(fromByteOffset: offset, as: UInt8.self) ^ template.load(fromByteOffset: offset, as: UInt8.self)
            output.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
    }
}
