@testable import NudgeFeatures
import NudgeEvents
import NudgeTraffic
import Testing

/// The packed record: every ring and scalar inside the stride, aligned, and never overlapping another.
@Suite struct LayoutTests {
    /// (offset, size) of every field of `layout`, from its rings and updaters.
    static func fields(_ layout: FeatureLayout) -> [(offset: Int, size: Int, alignment: Int)] {
        var fields = layout.groupRings.map { (offset: $0.offset, size: Int($0.length) * $0.cell.width, alignment: $0.cell.width) }
        var scalars: [Int: (Int, Int)] = [:]
        for updater in layout.updaters {
            switch updater.operation {
            case .lifetimeCount, .lifetimeFiniteCount: scalars[updater.offset] = (4, 4)
            case .lifetimeSum, .lifetimeMinimum, .lifetimeMaximum, .lifetimeBits, .latestTime: scalars[updater.offset] = (8, 8)
            case .last: scalars[updater.offset] = (16, 8)
            case .gauge: scalars[updater.offset] = (2, 2)
            default: break
            }
            if updater.seen.mask != 0 { scalars[updater.seen.offset] = (1, 1) }
        }
        fields += scalars.map { (offset: $0.key, size: $0.value.0, alignment: $0.value.1) }
        return fields.sorted { $0.offset < $1.offset }
    }

    static func check(_ set: FeatureSet) {
        let layout = set.layout
        let fields = Self.fields(layout)
        var end = CustomerRecord.headerSize
        for field in fields {
            #expect(field.offset >= end, "field at \(field.offset) overlaps the one before (ends at \(end))")
            #expect(field.offset % field.alignment == 0, "field at \(field.offset) is not \(field.alignment)-aligned")
            end = field.offset + field.size
        }
        #expect(end <= layout.stride)
        #expect(layout.stride % 8 == 0)
        // Packing wastes at most alignment padding: the stride is within 8 bytes of header + fields, unless
        // the 3 bytes after the header could not hold a 1-byte field.
        let used = CustomerRecord.headerSize + fields.reduce(0) { $0 + $1.size }
        #expect(layout.stride - used < 8 + 3, "stride \(layout.stride) for \(used) bytes of fields")
    }

    @Test func standardAndExtendedSetsPackTightly() throws {
        Self.check(.standard)
        Self.check(FeaturePropertyTests.extended)
        Self.check(try FeatureSet.load(file: FeatureFileTests.defaultFile))
        // The standard record: 9 rings (12+24+24+28+10+10+15+60+15 bytes), the last order time, the last NPS
        // answer (time and score), two 2-byte gauges and one byte of "ever matched" bits after the header.
        #expect(Self.fields(FeatureSet.standard.layout).map(\.size).reduce(0, +) == 227)
        #expect(FeatureSet.standard.bytesPerCustomer == 248)
    }

    @Test func randomSetsPackWithoutOverlap() throws {
        var random = SplitMix64(seed: 5)
        let windows: [FeatureWindow] = [.lifetime, .minutes(5), .hours(1), .hours(24), .days(7), .days(30), .days(90),
                                        .days(7, resolutionMillis: FeatureWindow.dayMillis)]
        let aggregations: [Aggregation] = [.count, .sum(.amount), .last(.score), .last(.amount), .timeSinceLast, .minimum(.amount), .maximum(.score),
                                           .average(.amount), .distinctCount(.category), .sum(.property("quantity")),
                                           .maximum(.property("discount")), .distinctCount(.property("brand"))]
        for round in 0..<50 {
            var definitions: [FeatureDefinition] = []
            for index in 0..<Int.random(in: 1...30, using: &random) {
                let kinds = Set((0..<Int.random(in: 1...3, using: &random)).compactMap { _ in EventKind.allCases.randomElement(using: &random) })
                let aggregation = aggregations.randomElement(using: &random) ?? .count
                definitions.append(FeatureDefinition(name: "f\(index)", filter: EventFilter(kinds: kinds),
                                                     aggregation: aggregation, window: windows.randomElement(using: &random) ?? .lifetime))
            }
            if round % 3 == 0 {
                definitions.append(FeatureDefinition(name: "gauge", filter: .kinds(.ticketOpened),
                                                     aggregation: .openCount(closes: [.ticketClosed])))
            }
            Self.check(try FeatureSet(definitions))
        }
    }
}
