import Foundation

/// The simulated product range: 8 categories of 40 products with fixed prices.
///
/// Product `p` (0-based index) is in category `p / 40` and is named `p-<category+1><nn>`
/// (`p-101` ... `p-840`). Prices do not depend on the seed, so feature definitions and tests
/// can rely on them across runs.
struct Catalog {
    static let categories: [StaticString] = [
        "outdoor", "kitchen", "fashion", "electronics", "toys", "beauty", "garden", "sports",
    ]
    static let productsPerCategory = 40
    static var productCount: Int { categories.count * productsPerCategory }

    /// Typical price range per category, in whole dollars.
    private static let priceRanges: [(low: Double, high: Double)] = [
        (15, 300), (8, 250), (10, 180), (20, 1_200), (5, 120), (5, 90), (5, 250), (10, 400),
    ]

    /// Search queries per category (three each), for `Products Searched`.
    static let queries: [StaticString] = [
        "tent", "hiking boots", "sleeping bag",
        "chef knife", "espresso machine", "frying pan",
        "rain jacket", "sneakers", "linen shirt",
        "headphones", "smartwatch", "usb-c charger",
        "building blocks", "puzzle", "plush bear",
        "face serum", "sunscreen", "lip balm",
        "hose reel", "pruning shears", "seed starter",
        "yoga mat", "running socks", "dumbbells",
    ]

    /// Coupon codes for `Coupon Applied`, with their discount: percent when positive, cents off when negative.
    static let coupons: [(code: StaticString, discount: Int64)] = [
        ("SAVE10", 10), ("SAVE15", 15), ("FIVEOFF", -500), ("WELCOME20", 20),
    ]

    /// Price in US cents of each product.
    let usdCents: [Int64]

    init() {
        // A fixed seed: prices belong to the catalog, not to a run.
        var mixer = SplitMix64(seed: 0x00C0_FFEE)
        var prices: [Int64] = []
        prices.reserveCapacity(Self.productCount)
        for product in 0..<Self.productCount {
            let range = Self.priceRanges[product / Self.productsPerCategory]
            let u = Double(mixer.next() >> 11) * 0x1.0p-53
            // Log-uniform: many cheap items, a few expensive ones, as in real assortments.
            let dollars = max(2, Int64(range.low * exp(u * log(range.high / range.low))))
            let ending: Int64 = [99, 90, 0][Int(mixer.next() % 3)]
            prices.append(ending == 0 ? dollars * 100 : (dollars - 1) * 100 + ending)
        }
        usdCents = prices
    }

    /// The number in the product id (`p-311` has number 311).
    @inline(__always)
    static func productNumber(_ product: Int) -> UInt64 {
        UInt64((product / productsPerCategory + 1) * 100 + product % productsPerCategory + 1)
    }

    @inline(__always)
    static func category(of product: Int) -> Int {
        product / productsPerCategory
    }

    /// Price of a product in the customer's currency (a flat conversion, rounded to the cent).
    @inline(__always)
    func price(of product: Int, in currency: Currency) -> Int64 {
        let usd = usdCents[product]
        return usd * currency.percentOfUSD / 100
    }
}

/// The currency a customer pays in: mostly USD, some EUR and GBP.
enum Currency: UInt8 {
    case usd, eur, gbp

    static let cumulativeShares = cumulativeWeights([0.90, 0.06, 0.04])

    var literal: StaticString {
        switch self {
        case .usd: "USD"
        case .eur: "EUR"
        case .gbp: "GBP"
        }
    }

    /// Price level relative to USD, in percent.
    var percentOfUSD: Int64 {
        switch self {
        case .usd: 100
        case .eur: 92
        case .gbp: 79
        }
    }
}
