import NudgeEvents

extension FeatureSet {
    /// The features the starter models use, in model-schema order. Windows use the default resolutions
    /// (1h@5m, 24h@1h, 7d@6h, 30d@1d, 90d@3d): ``bytesPerCustomer`` is 1104.
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
            FeatureDefinition(name: "revenue_90d", filter: .kinds(.orderCompleted), aggregation: .sum, window: .days(90)),
            FeatureDefinition(name: "days_since_last_order", filter: .kinds(.orderCompleted), aggregation: .timeSinceLast,
                              missingValue: never, cap: never),
            FeatureDefinition(name: "tickets_open", filter: .kinds(.ticketOpened),
                              aggregation: .openCount(closes: [.ticketClosed])),
            FeatureDefinition(name: "complaints_30d", filter: .kinds(.complaintFiled), aggregation: .count, window: .days(30)),
            FeatureDefinition(name: "refunds_90d", filter: .kinds(.orderRefunded), aggregation: .count, window: .days(90)),
            FeatureDefinition(name: "nps_last", filter: .kinds(.surveyAnswered), aggregation: .last, missingValue: -1),
            FeatureDefinition(name: "cart_items", filter: .kinds(.productAdded),
                              aggregation: .netCount(removes: [.productRemoved], resets: [.orderCompleted])),
            FeatureDefinition(name: "sessions_7d", filter: .kinds(.page, .screen, .productViewed, .productsSearched),
                              aggregation: .count, window: .days(7)),
            FeatureDefinition(name: "days_since_last_seen", filter: .anyEvent, aggregation: .timeSinceLast,
                              missingValue: never, cap: never),
        ]
    }
}
