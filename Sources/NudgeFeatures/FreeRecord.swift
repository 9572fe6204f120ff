/// Arena bytes an id occupied: where a new id of at most `length` bytes can go.
struct IdRegion {
    let offset: Int
    let length: Int
}

/// The header of a freed ``CustomerEntry`` or pool record: its free-list link, in the freed bytes themselves.
///
/// A free record keeps ``CustomerRecord`` offsets: the `channel` byte holds ``marker`` (channel raw
/// values are small and ``CustomerRecord/noChannel`` is 0xFF), so anything that walks the entries can tell a
/// free slot from a customer; `newestMillis` holds the next free slot (-1 at the end); `idOffset` and
/// `idLength` still locate the evicted customer's id bytes, dead arena space a new id may reuse. The
/// feature state is stale and never read: the table fills the whole record when the slot is taken.
enum FreeRecord {
    /// The `channel` byte of a free record.
    static let marker: UInt8 = 0xFE

    @inline(__always)
    static func isFree(_ record: UnsafeRawPointer) -> Bool {
        record.load(fromByteOffset: CustomerRecord.channel, as: UInt8.self) == marker
    }

    /// Marks `record` free, linked to the free slot `next` (-1 for none); its id fields are left as they are.
    static func free(_ record: UnsafeMutableRawPointer, next: Int) {
        record.storeBytes(of: marker, toByteOffset: CustomerRecord.channel, as: UInt8.self)
        record.storeBytes(of: Int64(next), toByteOffset: CustomerRecord.newestMillis, as: Int64.self)
    }

    /// The free slot after `record` in the list, -1 at the end.
    static func next(_ record: UnsafeRawPointer) -> Int {
        Int(record.load(fromByteOffset: CustomerRecord.newestMillis, as: Int64.self))
    }

    /// Where the evicted customer's id lay, for reuse.
    static func region(_ record: UnsafeRawPointer) -> IdRegion {
        IdRegion(offset: Int(record.load(fromByteOffset: CustomerRecord.idOffset, as: Int64.self)),
                 length: Int(record.load(fromByteOffset: CustomerRecord.idLength, as: UInt32.self)))
    }

    /// Records that the old id bytes are gone (the arena was rebuilt without them).
    static func forgetRegion(_ record: UnsafeMutableRawPointer) {
        record.storeBytes(of: 0, toByteOffset: CustomerRecord.idOffset, as: Int64.self)
        record.storeBytes(of: 0, toByteOffset: CustomerRecord.idLength, as: UInt32.self)
    }
}
