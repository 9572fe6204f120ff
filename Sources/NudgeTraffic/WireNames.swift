import NudgeEvents

/// NudgeEvents' wire names (`EventKind`, `SegmentType`, `Channel`) copied once into one block of
/// bytes, so that writing a name per event is a plain copy: their `wireName` Strings are read
/// only here, when a generator starts.
///
/// Owns raw memory like ``ByteWriter``: the owner calls ``release()`` exactly once.
struct WireNames {
    private var text = ByteWriter(capacity: 512)
    /// End offset in `text` of every name: event kinds, then message types, then channels, each
    /// in `allCases` order, which is raw-value order (the raw values are the implicit 0, 1, 2, …).
    private var ends: [Int] = []
    private var firstType = 0
    private var firstChannel = 0

    init() {
        for kind in EventKind.allCases { add(kind.wireName) }
        firstType = ends.count
        for type in SegmentType.allCases { add(type.wireName) }
        firstChannel = ends.count
        for channel in Channel.allCases { add(channel.wireName) }
    }

    private mutating func add(_ name: String) {
        for byte in name.utf8 { text.append(byte) }
        ends.append(text.count)
    }

    func release() {
        text.release()
    }

    /// `Product Added`, `page`, … (`EventKind.wireName`).
    @inline(__always)
    func name(of kind: EventKind) -> UnsafeRawBufferPointer {
        span(Int(kind.rawValue))
    }

    /// `track`, `page`, `screen` or `identify` (`SegmentType.wireName`).
    @inline(__always)
    func name(of type: SegmentType) -> UnsafeRawBufferPointer {
        span(firstType + Int(type.rawValue))
    }

    /// `web`, `call_center`, … (`Channel.wireName`).
    @inline(__always)
    func name(of channel: Channel) -> UnsafeRawBufferPointer {
        span(firstChannel + Int(channel.rawValue))
    }

    @inline(__always)
    private func span(_ index: Int) -> UnsafeRawBufferPointer {
        let start = index == 0 ? 0 : ends[index - 1]
        return UnsafeRawBufferPointer(rebasing: text.bytes[start..<ends[index]])
    }
}
