/// One property of `properties` that a feature file reads by name (`properties.<name>`), as one event held it.
///
/// Borrowed like every ``RawText``: valid until the decoder's next call.
public struct PropertyValue: Sendable {
    /// The property's key.
    public var name: RawText
    /// A string's content, a number's digits, or `true` / `false`; empty when the property is absent, null, an
    /// object or an array.
    public var text: RawText
    /// The value of a JSON number within ±``SegmentDecoder/maxMagnitude``; NaN for anything else, so sums skip
    /// it and no numeric condition holds for it.
    public var number: Double

    /// A property `name` holding `text` and `number`.
    @inline(__always)
    public init(name: RawText, text: RawText = .empty, number: Double = .nan) {
        self.name = name
        self.text = text
        self.number = number
    }

    /// Whether the event carried a value a feature can read (text, or a number, whose digits are its text).
    @inline(__always)
    public var isPresent: Bool { !text.isEmpty }
}

/// The properties a decoder was asked to read (see ``SegmentDecoder/init(maxMessageBytes:properties:)``), in the
/// order it was given their names: the store reads them by that position, the slot.
///
/// Two words pointing at the decoder's memory (or at the caller's, for an event built by hand), so the event
/// stays a flat value whatever a feature file declares. The decoder rewrites that memory on its next call, so
/// the values are valid until then, as a ``RawText`` of its scratch is; `@unchecked Sendable` on the same
/// terms as ``RawText``: whoever owns the decoder enforces that lifetime.
public struct EventProperties: @unchecked Sendable {
    /// The values, one per slot.
    public let values: UnsafeBufferPointer<PropertyValue>

    /// Wraps values without copying; their memory must outlive every use of the event.
    public init(_ values: UnsafeBufferPointer<PropertyValue>) {
        self.values = values
    }

    /// No properties read.
    public static let none = EventProperties(UnsafeBufferPointer(start: nil, count: 0))

    /// The number of slots.
    @inline(__always)
    public var count: Int { values.count }

    /// The value in `slot`; an absent value for a slot past the end.
    @inline(__always)
    public subscript(slot: Int) -> PropertyValue {
        slot < values.count ? values[slot] : PropertyValue(name: .empty)
    }

    /// Whether any slot holds a value.
    @inline(__always)
    public var anyPresent: Bool {
        for value in values where value.isPresent { return true }
        return false
    }

    /// The value of the property called `name`, nil when the decoder was not asked to read it (slow: tests,
    /// tools).
    public func value(named name: String) -> PropertyValue? {
        values.first { $0.name.string == name }
    }
}
