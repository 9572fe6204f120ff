/// A few bytes a ``CustomerTable``'s owner keeps for a customer outside the feature record (the pipeline's
/// contact history and pending silence), which follow the customer into the cold tier and back. The table
/// does not read them.
///
/// A fixed-size value (no allocation): the owner appends integers as it evicts a customer, and reads them
/// back in the same order when the customer returns (see ``CustomerTable/onRestore``) or is detached from
/// the cold tier. Little-endian, so the bytes mean the same on every host.
public struct ColdAttachment: Sendable, Equatable {
    /// The most bytes an attachment holds.
    public static let capacity = 72

    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
    /// Bytes written, at most ``capacity``.
    public private(set) var count = 0

    /// Nothing attached.
    public init() {}

    /// The bytes `bytes`; nil when there are more than ``capacity``.
    init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count <= Self.capacity else { return nil }
        if let source = bytes.baseAddress {
            withUnsafeMutableBytes(of: &words) { $0.baseAddress?.copyMemory(from: source, byteCount: bytes.count) }
        }
        count = bytes.count
    }

    /// Appends `value`, little-endian; false (nothing written) when it does not fit.
    @discardableResult
    public mutating func append<Value: FixedWidthInteger>(_ value: Value) -> Bool {
        let size = MemoryLayout<Value>.size
        guard count + size <= Self.capacity else { return false }
        let offset = count
        withUnsafeMutableBytes(of: &words) { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: Value.self) }
        count += size
        return true
    }

    /// The `Value` at byte `offset`, moving `offset` past it; nil when the attachment ends first.
    public func read<Value: FixedWidthInteger>(_: Value.Type, at offset: inout Int) -> Value? {
        let size = MemoryLayout<Value>.size
        guard offset >= 0, offset + size <= count else { return nil }
        let start = offset
        offset += size
        return Value(littleEndian: Swift.withUnsafeBytes(of: words) { $0.loadUnaligned(fromByteOffset: start, as: Value.self) })
    }

    /// Calls `body` with the bytes written.
    func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        Swift.withUnsafeBytes(of: words) { body(UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
    }

    /// Equal when the bytes written are.
    public static func == (lhs: ColdAttachment, rhs: ColdAttachment) -> Bool {
        lhs.count == rhs.count && lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { right in left.elementsEqual(right) } }
    }
}
