import NudgeEvents

extension FeatureSet {
    /// The features the starter models use, in model-schema order; `models/features.json` starts with the
    /// same fourteen. Windows use the default resolutions (1h@5m, 24h@2h, 7d@12h, 30d@3d, 90d@6d):
    /// ``bytesPerCustomer`` is 248: the 21-byte header, nine rings of 10 to 15 buckets (8- and 16-bit counts,
    /// one Float32 sum: 198 bytes), the last order's time, the last NPS answer (time and score), two 16-bit
    /// gauges and one byte of "ever matched" bits.
    ///
    /// `sessions_7d` counts browsing activity (pages, screens, product views, searches), not sessionized
    /// visits. `days_since_last_seen` counts every event kind, outcome events included.
    public static let standard = FeatureSet(validated: standardDefinitions)

    private static var standardDefinitions: [FeatureDefinition] {
        let never = 365.0
        return [
            FeatureDefinition(name: "views_1h", filter: .kinds(.productViewed), aggregation: .count, window: .hours(1)),
            FeatureDefinition(name: "views_24h", filter: .kinds(.productViewed), aggregation: .count, window: .hours(24)),
            FeatureDefinition(name: "adds_24h", filter: .kinds(.productAdded), aggregation: .count, window: .hours(24)),
            FeatureDefinition(name: "orders_30d", filter: .kinds(.orderCompleted), aggregation: .count, window: .days(30)),
            FeatureDefinition(name: "orders_90d", filter: .kinds(.orderCompleted), aggregation: .count, window: .days(90)),
            FeatureDefinition(name: "revenue_90d", filter: .kinds(.orderCompleted), aggregation: .sum(.amount), window: .days(90)),
            FeatureDefinition(name: "days_since_last_order", filter: .kinds(.orderCompleted), aggregation: .timeSinceLast,
                              missingValue: never, cap: never),
            FeatureDefinition(name: "tickets_open", filter: .kinds(.ticketOpened),
                              aggregation: .openCount(closes: [.ticketClosed])),
            FeatureDefinition(name: "complaints_30d", filter: .kinds(.complaintFiled), aggregation: .count, window: .days(30)),
            FeatureDefinition(name: "refunds_90d", filter: .kinds(.orderRefunded), aggregation: .count, window: .days(90)),
            FeatureDefinition(name: "nps_last", filter: .kinds(.surveyAnswered), aggregation: .last(.score), missingValue: -1),
            FeatureDefinition(name: "cart_items", filter: .kinds(.productAdded),
                              aggregation: .netCount(removes: [.productRemoved], resets: [.orderCompleted])),
            FeatureDefinition(name: "sessions_7d", filter: .kinds(.page, .screen, .productViewed, .productsSearched),
                              aggregation: .count, window: .days(7)),
            FeatureDefinition(name: "days_since_last_seen", filter: .anyEvent, aggregation: .timeSinceLast,
                              missingValue: never, cap: never),
        ]
    }
}
