import NudgeEvents

/// Which contract topic a message belongs on (CONTRACT.md, "Topics").
public enum TrafficTopic: String, Sendable, CaseIterable {
    /// Browsing, identity and everything not transactional.
    case clickstream = "events.clickstream"
    /// Orders (online and in store), refunds, cancellations, tickets, complaints and surveys.
    case transactions = "events.transactions"
    /// Offer outcome events that close the decision loop.
    case outcomes = "nba.outcomes"

    /// The topic an event of `kind` is published on: outcomes for the outcome events, transactions
    /// for orders and service contacts, clickstream for the rest.
    public init(carrying kind: EventKind) {
        switch kind {
        case .orderCompleted, .orderRefunded, .orderCancelled,
             .ticketOpened, .ticketClosed, .complaintFiled, .surveyAnswered:
            self = .transactions
        default:
            self = kind.isOutcome ? .outcomes : .clickstream
        }
    }

    /// Position in `allCases`, for counting without a dictionary.
    var index: Int {
        switch self {
        case .clickstream: 0
        case .transactions: 1
        case .outcomes: 2
        }
    }
}
