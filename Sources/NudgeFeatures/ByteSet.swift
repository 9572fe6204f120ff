/// A set of UInt8 raw values as a 256-bit mask: membership is two shifts and an AND, so filters test
/// events without hashing or allocating, whatever raw values the event enums use.
struct ByteSet: Sendable, Equatable {
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    /// Every byte value.
    static let all: ByteSet = {
        var set = ByteSet()
        set.words = (.max, .max, .max, .max)
        return set
    }()

    init() {}

    init<S: Sequence>(_ rawValues: S) where S.Element == UInt8 {
        for value in rawValues { insert(value) }
    }

    var isEmpty: Bool { words == (0, 0, 0, 0) }

    mutating func insert(_ value: UInt8) {
        let bit = UInt64(1) << UInt64(value & 63)
        switch value >> 6 {
        case 0: words.0 |= bit
        case 1: words.1 |= bit
        case 2: words.2 |= bit
        default: words.3 |= bit
        }
    }

    @inline(__always)
    func contains(_ value: UInt8) -> Bool {
        let word: UInt64
        switch value >> 6 {
        case 0: word = words.0
        case 1: word = words.1
        case 2: word = words.2
        default: word = words.3
        }
        return word & (UInt64(1) << UInt64(value & 63)) != 0
    }

    func intersects(_ other: ByteSet) -> Bool {
        words.0 & other.words.0 != 0 || words.1 & other.words.1 != 0
            || words.2 & other.words.2 != 0 || words.3 & other.words.3 != 0
    }

    static func == (lhs: ByteSet, rhs: ByteSet) -> Bool { lhs.words == rhs.words }
}
