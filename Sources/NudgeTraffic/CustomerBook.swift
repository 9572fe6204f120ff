import Foundation

/// What the simulation remembers about one customer: the latent traits drawn once, and the
/// recent history that drives churn and offer context.
struct CustomerState {
    var type: CustomerType
    var currency: Currency
    var favoriteCategory: Int
    var homeStore: Int
    /// Before this instant the customer does not exist yet (`new` customers join later).
    var activeFrom: Int64
    /// From this instant activity decays and purchases stop; `Int64.max` while not churning.
    var churnStart: Int64
    var lastOrderAt = Int64.min
    var lastAbandonedCartAt = Int64.min
    var lastTroubleAt = Int64.min
    var orders: UInt64 = 0
    var sessions: UInt64 = 0
    var tickets: UInt64 = 0
    var complaints: UInt64 = 0
    var surveys: UInt64 = 0
}

/// The customer population and the rules that turn latent type and history into activity.
struct CustomerBook {
    static let millisPerDay: Double = 86_400_000
    /// Time constant of the activity decay once a customer starts churning.
    static let decayMillis: Double = 7 * millisPerDay
    /// How long before the churn onset activity starts to slow down.
    static let leadMillis: Int64 = 21 * 86_400_000
    /// Churned customers still browse rarely (so "declining" stays observable) but do not buy.
    static let activityFloor = 0.03

    private(set) var states: [CustomerState]

    init(count: Int, start: Int64, random: inout Xoshiro256StarStar) {
        var states: [CustomerState] = []
        states.reserveCapacity(count)
        let profiles = TypeProfile.table
        for _ in 0..<count {
            let typeIndex = random.pick(cumulative: TypeProfile.cumulativeShares)
            let type = CustomerType(rawValue: UInt8(typeIndex)) ?? .loyal
            let profile = profiles[typeIndex]
            let currency = Currency(rawValue: UInt8(random.pick(cumulative: Currency.cumulativeShares))) ?? .usd
            let activeFrom = type == .newcomer
                ? start + Int64(random.exponential(mean: 30 * Self.millisPerDay))
                : start
            var churnStart = Int64.max
            if random.chance(profile.spontaneousChurn) {
                let delay = 2 * Self.millisPerDay + random.exponential(mean: profile.spontaneousChurnMeanDays * Self.millisPerDay)
                churnStart = activeFrom + Int64(min(delay, 1.0e13))
            }
            var state = CustomerState(
                type: type, currency: currency,
                favoriteCategory: random.below(Catalog.categories.count),
                homeStore: 1 + random.below(40),
                activeFrom: activeFrom, churnStart: churnStart)
            if type != .newcomer {
                // Existing customers ordered before the simulation began (not emitted): without
                // this their order cycles would all start in phase and orders ramp up at first.
                state.lastOrderAt = start - Int64(random.unit() * 1.5 * profile.orderCycleDays * Self.millisPerDay)
            }
            states.append(state)
        }
        self.states = states
    }

    var count: Int { states.count }

    subscript(customer: Int) -> CustomerState {
        get { states[customer] }
        set { states[customer] = newValue }
    }

    /// 0 before joining; 1 while engaged; then a slowdown over `leadMillis` before the churn
    /// onset (down to one half: fewer visits, fewer orders, so churn is predictable from recent
    /// behaviour), and an exponential decay to `activityFloor` after it.
    @inline(__always)
    func lifecycle(_ customer: Int, at time: Int64) -> Double {
        let state = states[customer]
        if time < state.activeFrom { return 0 }
        let untilChurn = state.churnStart == .max ? Int64.max : state.churnStart - time
        if untilChurn >= Self.leadMillis { return 1 }
        if untilChurn >= 0 { return 0.5 + 0.5 * Double(untilChurn) / Double(Self.leadMillis) }
        return max(Self.activityFloor, 0.5 * exp(Double(untilChurn) / Self.decayMillis))
    }

    /// Purchase propensity from the order cycle: 0.35 just after an order, 1 when the next one
    /// is due, up to 2 when overdue; 1 for a customer who has never ordered.
    @inline(__always)
    func orderNeed(_ customer: Int, at time: Int64, cycleDays: Double) -> Double {
        let last = states[customer].lastOrderAt
        guard last != .min else { return 1 }
        let days = Double(time - last) / Self.millisPerDay
        return min(2, 0.35 + 0.65 * days / cycleDays)
    }

    /// Makes the customer start churning at `time` unless already churning earlier.
    mutating func startChurning(_ customer: Int, at time: Int64) {
        states[customer].churnStart = min(states[customer].churnStart, time)
    }

    /// An accepted retention gesture saves a customer who is drifting away (churn onset within
    /// the lead-in or at most a week ago) by postponing the onset a month: the effect an uplift
    /// model can learn. Customers long gone are not won back.
    mutating func retain(_ customer: Int, at time: Int64) {
        let onset = states[customer].churnStart
        guard onset != .max, onset > time - 7 * Int64(Self.millisPerDay) else { return }
        states[customer].churnStart = max(onset, time + 30 * Int64(Self.millisPerDay))
    }
}
