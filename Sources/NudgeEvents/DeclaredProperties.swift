/// A decoder's table of the properties it reads by name: the names (copied once), the raw slot of each while
/// a message is scanned, and the ``PropertyValue``s an event points at. Plain pointers, so the scanner carries
/// it by value; ``SegmentDecoder`` owns the memory and frees it with `deallocate()`.
struct DeclaredProperties {
    /// Number of names.
    let count: Int
    /// Each name's bytes (in `nameBytes`).
    let names: UnsafeMutablePointer<RawText>
    /// The raw value of each name in the message being scanned.
    let fields: UnsafeMutablePointer<FieldSlot>
    /// What the event shows: `fields` shaped by `values()`.
    let shaped: UnsafeMutablePointer<PropertyValue>
    private let nameBytes: UnsafeMutableRawPointer

    init(_ names: [String]) {
        count = names.count
        let total = names.reduce(0) { $0 + $1.utf8.count }
        nameBytes = UnsafeMutableRawPointer.allocate(byteCount: max(total, 1), alignment: 8)
        self.names = UnsafeMutablePointer<RawText>.allocate(capacity: max(count, 1))
        fields = UnsafeMutablePointer<FieldSlot>.allocate(capacity: max(count, 1))
        shaped = UnsafeMutablePointer<PropertyValue>.allocate(capacity: max(count, 1))
        var at = nameBytes
        for (index, name) in names.enumerated() {
            let utf8 = Array(name.utf8)
            utf8.withUnsafeBytes { if let base = $0.baseAddress { at.copyMemory(from: base, byteCount: $0.count) } }
            let text = RawText(start: at, count: utf8.count)
            (self.names + index).initialize(to: text)
            (shaped + index).initialize(to: PropertyValue(name: text))
            at += utf8.count
        }
        fields.initialize(repeating: .absent, count: max(count, 1))
    }

    func deallocate() {
        nameBytes.deallocate()
        names.deallocate()
        fields.deallocate()
        shaped.deallocate()
    }

    /// Every slot absent (a new message, or a repeated `properties` object).
    @inline(__always)
    func clear() {
        for index in 0..<count { fields[index] = .absent }
    }

    /// The slot of the property called `name`; -1 when it is not read.
    @inline(__always)
    func slot(of name: RawText) -> Int {
        for index in 0..<count where names[index] == name { return index }
        return -1
    }

    /// The scanned slots as the event shows them (see ``PropertyValue``).
    @inline(__always)
    func values() -> EventProperties {
        // `EventProperties.none` spelled out: no global's accessor on the path of every event.
        guard count > 0 else { return EventProperties(UnsafeBufferPointer(start: nil, count: 0)) }
        for index in 0..<count {
            let field = fields[index]
            switch field.kind {
            case .string, .bool:
                shaped[index].text = field.text
                shaped[index].number = .nan
            case .number:
                shaped[index].text = field.text
                shaped[index].number = field.number.magnitude <= SegmentDecoder.maxMagnitude ? field.number : .nan
            case .absent, .null, .object, .array:
                shaped[index].text = .empty
                shaped[index].number = .nan
            }
        }
        return EventProperties(UnsafeBufferPointer(start: shaped, count: count))
    }
}
