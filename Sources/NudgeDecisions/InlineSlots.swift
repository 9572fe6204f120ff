/// Up to five values stored inline, so that a decision can carry short lists without an
/// array (no heap allocation per decision). Positions beyond `count` hold the filler.
struct InlineSlots<Element: Sendable & Equatable>: Sendable {
    /// The most elements any InlineSlots can hold.
    static var maxCapacity: Int { 5 }

    private var e0, e1, e2, e3, e4: Element
    /// Number of elements in use.
    private(set) var count = 0

    init(filler: Element) {
        (e0, e1, e2, e3, e4) = (filler, filler, filler, filler, filler)
    }

    /// Element `i`; positions past the end read as the last slot rather than trapping.
    subscript(i: Int) -> Element {
        get {
            switch i {
            case 0: e0
            case 1: e1
            case 2: e2
            case 3: e3
            default: e4
            }
        }
        set {
            switch i {
            case 0: e0 = newValue
            case 1: e1 = newValue
            case 2: e2 = newValue
            case 3: e3 = newValue
            default: e4 = newValue
            }
        }
    }

    /// Appends when fewer than `limit` (at most `maxCapacity`) are held; returns whether it did.
    @discardableResult
    mutating func append(_ element: Element, limit: Int) -> Bool {
        guard count < min(limit, Self.maxCapacity) else { return false }
        self[count] = element
        count += 1
        return true
    }

    /// Inserts at `position`, shifting later elements right; when `limit` elements are
    /// already held the last one falls off. A position at or past `limit` is ignored.
    mutating func insert(_ element: Element, at position: Int, limit: Int) {
        let limit = min(limit, Self.maxCapacity)
        guard position >= 0, position < limit, position <= count else { return }
        var j = min(count, limit - 1)
        while j > position { self[j] = self[j - 1]; j -= 1 }
        self[position] = element
        if count < limit { count += 1 }
    }

    /// Whether both hold the same elements in the same order (fillers are ignored).
    func sameElements(as other: InlineSlots) -> Bool {
        guard count == other.count else { return false }
        for i in 0..<count where self[i] != other[i] { return false }
        return true
    }
}
