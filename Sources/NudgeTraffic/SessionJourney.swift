import NudgeEvents

/// Online sessions: landing page, search, lists, product views, cart, checkout and order, with
/// abandonment at every step, page/screen views between steps, and for anonymous sessions an
/// `identify` after the first one to three events.
extension TrafficEngine {
    /// Gap between ordinary steps of a session.
    private static let stepMinimum: Int64 = 3_000
    private static let stepMean = 35_000.0

    /// Schedules an online session. `intent` marks a visit prompted by an accepted offer: it is
    /// far more likely to buy.
    mutating func startSession(_ customer: Int, at time: Int64, intent: Bool) {
        let profile = profile(of: customer)
        let base = TrafficChannel.onlineChannels[world.pick(cumulative: profile.onlineChannels)]
        var journey = Journey(stage: .landing, customer: customer, channel: decorate(base))
        customers[customer].sessions += 1
        journey.session = customers[customer].sessions
        let lifecycle = customers.lifecycle(customer, at: time)
        // Churning customers still look around but hardly buy: propensity falls with activity squared.
        journey.conversion = profile.conversion * lifecycle * lifecycle * (intent ? 2.5 : 1)
            * customers.orderNeed(customer, at: time, cycleDays: profile.orderCycleDays)
        if world.chance(config.anonymousShare) {
            journey.anonymousId = nextAnonymousId()
            journey.identifyAfter = 1 + world.below(3)
        }
        queue.add(journey, at: time)
    }

    mutating func stepSession(_ journey: inout Journey, at time: Int64) -> Int64? {
        if journey.anonymousId != 0 && !journey.identified
            && (journey.steps >= journey.identifyAfter || journey.stage == .checkout) {
            // The visitor logs in: this links the anonymous events before it to the customer.
            journey.identified = true
            beginEvent(.identify, for: journey, at: time)
            field("email")
            value.append(UInt8(ascii: "\""))
            writeCustomerId(journey.customer, into: &value)
            value.append("@example.com\"")
            endEvent()
            return time + world.delay(minimum: 1_000, mean: 8_000)
        }
        if journey.pageDue {
            journey.pageDue = false
            writePageView(journey, at: time)
            return time + world.delay(minimum: 500, mean: 3_000)
        }
        let next = emitSessionStage(&journey, at: time)
        guard let next else {
            if journey.cart.count > 0 && journey.stage != .order {
                customers[journey.customer].lastAbandonedCartAt = time
            }
            return nil
        }
        enter(next, &journey)
        let gap = next == .order
            ? world.delay(minimum: 20_000, mean: 70_000)
            : world.delay(minimum: Self.stepMinimum, mean: Self.stepMean)
        return time + gap
    }

    /// Moves to `stage`, choosing what it shows, and sometimes puts a page view in front of it.
    private mutating func enter(_ stage: JourneyStage, _ journey: inout Journey) {
        let previous = journey.stage
        journey.stage = stage
        switch stage {
        case .list where previous != .search:
            journey.category = pickCategory(for: journey.customer)
        case .view:
            // Mostly another product of the same list, sometimes a jump elsewhere.
            if world.chance(0.15) { journey.category = pickCategory(for: journey.customer) }
            journey.product = journey.category * Catalog.productsPerCategory + world.below(Catalog.productsPerCategory)
        default:
            break
        }
        switch stage {
        case .list, .view, .cartView, .checkout:
            journey.pageDue = world.chance(0.3)
        default:
            break
        }
    }

    /// The favourite category more often than not.
    private mutating func pickCategory(for customer: Int) -> Int {
        let favoriteShare = customers[customer].type == .loyal ? 0.7 : 0.45
        return world.chance(favoriteShare)
            ? customers[customer].favoriteCategory
            : world.below(Catalog.categories.count)
    }

    private mutating func writePageView(_ journey: Journey, at time: Int64) {
        let screen = journey.channel.sendsScreens
        let kind: EventKind = screen ? .screen : .page
        switch journey.stage {
        case .landing:
            beginEvent(kind, for: journey, at: time, pageName: "Home")
            if !screen { string("path", "/") }
        case .search:
            beginEvent(kind, for: journey, at: time, pageName: "Search")
            if !screen { string("path", "/search") }
        case .list:
            beginEvent(kind, for: journey, at: time, pageName: "Category")
            if !screen {
                field("path")
                value.append("\"/c/")
                value.append(Catalog.categories[journey.category])
                value.append(UInt8(ascii: "\""))
            }
            category(journey.category)
        case .view:
            beginEvent(kind, for: journey, at: time, pageName: "Product")
            if !screen {
                field("path")
                value.append("\"/p/")
                value.appendDecimal(Catalog.productNumber(journey.product))
                value.append(UInt8(ascii: "\""))
            }
            category(journey.category)
        case .cartView:
            beginEvent(kind, for: journey, at: time, pageName: "Cart")
            if !screen { string("path", "/cart") }
        default:
            beginEvent(kind, for: journey, at: time, pageName: "Checkout")
            if !screen { string("path", "/checkout") }
        }
        endEvent()
    }

    /// Emits the stage's event and returns the next stage, or nil when the visitor leaves.
    private mutating func emitSessionStage(_ journey: inout Journey, at time: Int64) -> JourneyStage? {
        let customer = journey.customer
        let currency = customers[customer].currency
        let profile = profile(of: customer)
        let draw = world.unit()
        switch journey.stage {
        case .landing:
            writePageView(journey, at: time)
            return draw < 0.45 ? .search : .list

        case .search:
            journey.category = pickCategory(for: customer)
            beginEvent(.productsSearched, for: journey, at: time)
            string("query", Catalog.queries[journey.category * 3 + world.below(3)])
            endEvent()
            return draw < 0.12 ? nil : .list

        case .list:
            beginEvent(.productListViewed, for: journey, at: time)
            field("list_id")
            value.append("\"l-")
            value.append(Catalog.categories[journey.category])
            value.append(UInt8(ascii: "\""))
            category(journey.category)
            endEvent()
            return draw < 0.15 ? nil : .view

        case .view:
            beginEvent(.productViewed, for: journey, at: time)
            productFields(journey.product, quantity: 0, currency: currency)
            self.currency(currency, always: false)
            endEvent()
            journey.views += 1
            let add = min(0.6, 0.22 * journey.conversion)
            let wish = add + profile.wishlistRate
            let more = wish + (journey.views < 6 ? 0.35 : 0)
            let back = more + 0.08
            if draw < add { return .add }
            if draw < wish { return .wishlist }
            if draw < more { return .view }
            if draw < back { return .list }
            return nil

        case .add:
            let quantity = draw < 0.8 ? 1 : (draw < 0.95 ? 2 : 3)
            journey.cart.add(product: journey.product, quantity: quantity)
            beginEvent(.productAdded, for: journey, at: time)
            productFields(journey.product, quantity: quantity, currency: currency)
            self.currency(currency, always: false)
            reference("cart_id", "k-", customer: customer, sequence: journey.session)
            endEvent()
            let next = world.unit()
            if next < 0.07 { return .remove }
            if next < 0.07 + (journey.cart.count < Cart.capacity ? 0.25 : 0) { return .view }
            if next < 0.62 { return .cartView }
            return nil

        case .remove:
            guard let removed = journey.cart.removeLast() else {
                // Unreachable by construction (removal follows an add); still emit one event.
                writeCartViewed(journey, at: time)
                return nil
            }
            beginEvent(.productRemoved, for: journey, at: time)
            productFields(removed.product, quantity: removed.quantity, currency: currency)
            self.currency(currency, always: false)
            reference("cart_id", "k-", customer: customer, sequence: journey.session)
            endEvent()
            if journey.cart.count > 0 {
                return draw < 0.55 ? .cartView : (draw < 0.8 ? .view : nil)
            }
            return draw < 0.4 ? .view : nil

        case .wishlist:
            beginEvent(.productAddedToWishlist, for: journey, at: time)
            reference("wishlist_id", "w-", customer: customer, sequence: 1)
            productFields(journey.product, quantity: 0, currency: currency)
            self.currency(currency, always: false)
            endEvent()
            return draw < 0.45 && journey.views < 8 ? .view : nil

        case .cartView:
            writeCartViewed(journey, at: time)
            if journey.coupon == 0 && draw < profile.couponRate { return .coupon }
            return world.chance(min(0.92, 0.55 * journey.conversion)) ? .checkout : nil

        case .coupon:
            let index = world.below(Catalog.coupons.count)
            journey.coupon = index + 1
            beginEvent(.couponApplied, for: journey, at: time)
            reference("cart_id", "k-", customer: customer, sequence: journey.session)
            string("coupon_id", Catalog.coupons[index].code)
            money("discount", discount(journey, currency: currency))
            endEvent()
            return draw < 0.85 ? .checkout : nil

        case .checkout:
            beginEvent(.checkoutStarted, for: journey, at: time)
            reference("cart_id", "k-", customer: customer, sequence: journey.session)
            money("value", subtotal(journey.cart, currency: currency))
            self.currency(currency, always: true)
            products(journey.cart, currency: currency)
            endEvent()
            let couponBoost = journey.coupon > 0 ? 1.25 : 1.0
            return draw < min(0.95, 0.72 * journey.conversion * couponBoost) ? .order : nil

        default:
            writeOrder(journey, at: time, store: false)
            return nil
        }
    }

    private mutating func writeCartViewed(_ journey: Journey, at time: Int64) {
        beginEvent(.cartViewed, for: journey, at: time)
        reference("cart_id", "k-", customer: journey.customer, sequence: journey.session)
        products(journey.cart, currency: customers[journey.customer].currency)
        endEvent()
    }

    /// The coupon's discount on the current cart, in cents (never more than the cart is worth).
    func discount(_ journey: Journey, currency: Currency) -> Int64 {
        guard journey.coupon > 0 else { return 0 }
        let subtotal = subtotal(journey.cart, currency: currency)
        let rule = Catalog.coupons[journey.coupon - 1].discount
        let amount = rule > 0 ? subtotal * rule / 100 : -rule
        return min(amount, subtotal)
    }

    /// `Order Completed` for the journey's cart, online or in store, and the order's follow-ups.
    mutating func writeOrder(_ journey: Journey, at time: Int64, store: Bool) {
        let customer = journey.customer
        let currency = customers[customer].currency
        customers[customer].orders += 1
        let order = customers[customer].orders
        let subtotal = subtotal(journey.cart, currency: currency)
        let discount = discount(journey, currency: currency)
        let revenue = subtotal - discount
        let shipping: Int64 = store || revenue >= 5_000 ? 0 : 599
        let tax = revenue * 8 / 100
        let total = revenue + shipping + tax
        beginEvent(.orderCompleted, for: journey, at: time)
        reference("order_id", "o-", customer: customer, sequence: order)
        if store {
            field("store_id")
            value.append("\"s-")
            value.appendDecimal(UInt64(customers[customer].homeStore))
            value.append(UInt8(ascii: "\""))
        }
        money("total", total)
        money("revenue", revenue)
        money("shipping", shipping)
        money("tax", tax)
        if discount > 0 {
            money("discount", discount)
            string("coupon", Catalog.coupons[journey.coupon - 1].code)
        }
        self.currency(currency, always: true)
        products(journey.cart, currency: currency)
        endEvent()
        customers[customer].lastOrderAt = time
        scheduleFollowUp(customer: customer, order: order, total: total, at: time, store: store)
    }
}
