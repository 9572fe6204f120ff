/// Which contract topic a message belongs on (CONTRACT.md, "Topics").
public enum TrafficTopic: String, Sendable, CaseIterable {
    /// Browsing, identity and everything not transactional.
    case clickstream = "events.clickstream"
    /// Orders (online and in store), refunds, cancellations, tickets, complaints and surveys.
    case transactions = "events.transactions"
    /// Offer outcome events that close the decision loop.
    case outcomes = "nba.outcomes"
}

/// What a generated message carries: the Segment event name, the non-track type, or `malformed`.
public enum TrafficEventKind: UInt8, Sendable, CaseIterable {
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
    /// `Order Completed` (online or `store` channel)
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
    /// `Survey Answered`
    case surveyAnswered
    /// `Offer Delivered`
    case offerDelivered
    /// `Offer Viewed`
    case offerViewed
    /// `Offer Accepted`
    case offerAccepted
    /// `Offer Dismissed`
    case offerDismissed
    /// A `page` message (web).
    case page
    /// A `screen` message (app).
    case screen
    /// An `identify` message linking an anonymousId to a userId.
    case identify
    /// A deliberately broken message (see `TrafficConfig.malformedRate`).
    case malformed

    /// The event name as written on the wire (`"Product Added"`), or the message type for
    /// `page`/`screen`/`identify`, or `"malformed"`.
    public var name: String {
        String(describing: literal)
    }

    /// The topic this kind of event is published on.
    public var topic: TrafficTopic {
        switch self {
        case .orderCompleted, .orderRefunded, .orderCancelled,
             .ticketOpened, .ticketClosed, .complaintFiled, .surveyAnswered:
            .transactions
        case .offerDelivered, .offerViewed, .offerAccepted, .offerDismissed:
            .outcomes
        default:
            .clickstream
        }
    }

    /// Static bytes of `name`, written into JSON without creating a String.
    var literal: StaticString {
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
        case .malformed: "malformed"
        }
    }
}
