/// Segment message type: the envelope's `"type"` field.
public enum SegmentType: UInt8, Sendable, CaseIterable {
    /// A named action (`"event"` says which).
    case track
    /// A web page view.
    case page
    /// A mobile screen view.
    case screen
    /// A statement of who the user is; with both ids it links anonymous history to the customer.
    case identify

    /// The name on the wire (`"track"`, ...).
    public var wireName: String {
        switch self {
        case .track: "track"
        case .page: "page"
        case .screen: "screen"
        case .identify: "identify"
        }
    }

    /// The same name as a static string, so the decoder can compare bytes without creating a String.
    var wireLiteral: StaticString {
        switch self {
        case .track: "track"
        case .page: "page"
        case .screen: "screen"
        case .identify: "identify"
        }
    }

    /// Matches raw UTF-8 bytes against the wire names; nil for anything else (exact, case-sensitive).
    public init?(wireBytes bytes: UnsafeRawBufferPointer) {
        // Raw values rather than `allCases`, so even an unoptimised build allocates nothing here.
        for raw in SegmentType.track.rawValue...SegmentType.identify.rawValue {
            if let candidate = SegmentType(rawValue: raw), bytes.matches(candidate.wireLiteral) {
                self = candidate
                return
            }
        }
        return nil
    }
}

/// The touchpoint an event came from (`"channel"`); unknown or absent names are `.other`.
public enum Channel: UInt8, Sendable, CaseIterable {
    /// Web site.
    case web
    /// Mobile app.
    case app
    /// Physical store / point of sale.
    case store
    /// Call centre (`call_center` on the wire).
    case callCenter
    /// E-mail.
    case email
    /// SMS.
    case sms
    /// Mobile push notification.
    case push
    /// Social network.
    case social
    /// Partner / affiliate.
    case partner
    /// Anything not named above, or no channel at all.
    case other

    /// The name on the wire: `"call_center"` for `.callCenter`, `"other"` for `.other`.
    public var wireName: String {
        switch self {
        case .web: "web"
        case .app: "app"
        case .store: "store"
        case .callCenter: "call_center"
        case .email: "email"
        case .sms: "sms"
        case .push: "push"
        case .social: "social"
        case .partner: "partner"
        case .other: "other"
        }
    }

    /// The same name as a static string, for allocation-free byte comparison.
    var wireLiteral: StaticString {
        switch self {
        case .web: "web"
        case .app: "app"
        case .store: "store"
        case .callCenter: "call_center"
        case .email: "email"
        case .sms: "sms"
        case .push: "push"
        case .social: "social"
        case .partner: "partner"
        case .other: "other"
        }
    }

    /// Exact wire name (including `"other"`) to channel; nil for anything else. For configuration, not the hot path.
    public init?(wireName: String) {
        guard let found = Channel.allCases.first(where: { $0.wireName == wireName }) else { return nil }
        self = found
    }

    /// Raw UTF-8 wire name to channel without allocating; unknown names are `.other`, as the contract says.
    public init(wireBytes bytes: UnsafeRawBufferPointer) {
        // Raw values rather than `allCases`, so even an unoptimised build allocates nothing here.
        for raw in Channel.web.rawValue...Channel.partner.rawValue {
            if let candidate = Channel(rawValue: raw), bytes.matches(candidate.wireLiteral) {
                self = candidate
                return
            }
        }
        self = .other
    }
}

/// What happened, normalised: the contract's track event names, the three non-track types, and a catch-all.
public enum EventKind: UInt8, Sendable, CaseIterable {
    /// `Products Searched`
    case productsSearched
    /// `Product List Viewed`
    case productListViewed
    /// `Product Viewed`
    case productViewed
    /// `Product Added`
    case productAdded
    /// `Product Removed`
    case productRemoved
    /// `Cart Viewed`
    case cartViewed
    /// `Checkout Started`
    case checkoutStarted
    /// `Order Completed`
    case orderCompleted
    /// `Order Refunded`
    case orderRefunded
    /// `Order Cancelled`
    case orderCancelled
    /// `Coupon Applied`
    case couponApplied
    /// `Product Added to Wishlist`
    case productAddedToWishlist
    /// `Ticket Opened`
    case ticketOpened
    /// `Ticket Closed`
    case ticketClosed
    /// `Complaint Filed`
    case complaintFiled
    /// `Survey Answered` (carries `properties.score`, 0-10).
    case surveyAnswered
    /// `Offer Delivered` (outcome event).
    case offerDelivered
    /// `Offer Viewed` (outcome event).
    case offerViewed
    /// `Offer Accepted` (outcome event).
    case offerAccepted
    /// `Offer Dismissed` (outcome event).
    case offerDismissed
    /// A `page` message.
    case page
    /// A `screen` message.
    case screen
    /// An `identify` message.
    case identify
    /// A track event whose name is not one of the above: kept as generic activity, not rejected.
    case otherActivity

    /// The track event name (`"Product Added"`), `"page"`/`"screen"`/`"identify"`, or `"other"`.
    public var wireName: String {
        switch self {
        case .productsSearched: "Products Searched"
        case .productListViewed: "Product List Viewed"
        case .productViewed: "Product Viewed"
        case .productAdded: "Product Added"
        case .productRemoved: "Product Removed"
        case .cartViewed: "Cart Viewed"
        case .checkoutStarted: "Checkout Started"
        case .orderCompleted: "Order Completed"
        case .orderRefunded: "Order Refunded"
        case .orderCancelled: "Order Cancelled"
        case .couponApplied: "Coupon Applied"
        case .productAddedToWishlist: "Product Added to Wishlist"
        case .ticketOpened: "Ticket Opened"
        case .ticketClosed: "Ticket Closed"
        case .complaintFiled: "Complaint Filed"
        case .surveyAnswered: "Survey Answered"
        case .offerDelivered: "Offer Delivered"
        case .offerViewed: "Offer Viewed"
        case .offerAccepted: "Offer Accepted"
        case .offerDismissed: "Offer Dismissed"
        case .page: "page"
        case .screen: "screen"
        case .identify: "identify"
        case .otherActivity: "other"
        }
    }

    /// The same name as a static string, for allocation-free byte comparison (kept equal to `wireName` by a test).
    var wireLiteral: StaticString {
        switch self {
        case .productsSearched: "Products Searched"
        case .productListViewed: "Product List Viewed"
        case .productViewed: "Product Viewed"
        case .productAdded: "Product Added"
        case .productRemoved: "Product Removed"
        case .cartViewed: "Cart Viewed"
        case .checkoutStarted: "Checkout Started"
        case .orderCompleted: "Order Completed"
        case .orderRefunded: "Order Refunded"
        case .orderCancelled: "Order Cancelled"
        case .couponApplied: "Coupon Applied"
        case .productAddedToWishlist: "Product Added to Wishlist"
        case .ticketOpened: "Ticket Opened"
        case .ticketClosed: "Ticket Closed"
        case .complaintFiled: "Complaint Filed"
        case .surveyAnswered: "Survey Answered"
        case .offerDelivered: "Offer Delivered"
        case .offerViewed: "Offer Viewed"
        case .offerAccepted: "Offer Accepted"
        case .offerDismissed: "Offer Dismissed"
        case .page: "page"
        case .screen: "screen"
        case .identify: "identify"
        case .otherActivity: "other"
        }
    }

    /// True for the four outcome events that close the feedback loop.
    public var isOutcome: Bool {
        switch self {
        case .offerDelivered, .offerViewed, .offerAccepted, .offerDismissed: true
        default: false
        }
    }

    /// Maps a track event's raw name to its kind without allocating; unknown names are `.otherActivity`.
    /// Exact and case-sensitive, as Segment's spec names are.
    public init(trackEventName bytes: UnsafeRawBufferPointer) {
        // Twenty names; `matches` rejects on length before touching bytes, so this is a handful of compares.
        for raw in EventKind.productsSearched.rawValue...EventKind.offerDismissed.rawValue {
            if let kind = EventKind(rawValue: raw), bytes.matches(kind.wireLiteral) {
                self = kind
                return
            }
        }
        self = .otherActivity
    }
}
