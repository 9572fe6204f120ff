import Foundation
import NudgeModels
import Testing

@Suite("Logistic scoring")
struct ScoringTests {
    /// Schema positions: days_since_last_order 0, views_24h 1, orders_90d 2, ...
    /// Customer: 39 days since the last order, 3.4 orders in 90 days.
    static let customer: [Double] = [39, 7, 3.4, 0, 0, 0]

    @Test func probabilityMatchesHandArithmetic() throws {
        let scorer = try Fixture.loadChurn(Fixture.churn()).scorer
        // orders_90d:            -0.8 * (3.4 - 1.2) / 1.1  = -0.8 * 2.0 = -1.6
        // days_since_last_order:  1.12 * (39 - 14) / 12.5  = 1.12 * 2.0 =  2.24
        // logit = -1.31 - 1.6 + 2.24 = -0.67
        // p = 1 / (1 + e^0.67) = 1 / (1 + 1.954237) = 0.338497
        Self.customer.withUnsafeBufferPointer { x in
            #expect(abs(scorer.logit(x) - (-0.67)) < 1e-12)
            #expect(abs(scorer.probability(x) - 0.338497) < 1e-6)
        }
    }

    @Test func nonFiniteOrMissingFeaturesContributeNothing() throws {
        let scorer = try Fixture.loadChurn(Fixture.churn()).scorer
        // days_since_last_order is NaN: logit = -1.31 - 1.6 = -2.91, p = 1/(1+e^2.91) = 0.051661
        [Double.nan, 7, 3.4, 0, 0, 0].withUnsafeBufferPointer { x in
            #expect(abs(scorer.logit(x) - (-2.91)) < 1e-12)
            #expect(abs(scorer.probability(x) - 0.051661) < 1e-6)
        }
        [Double.infinity, 7, 3.4, 0, 0, 0].withUnsafeBufferPointer { x in
            #expect(abs(scorer.logit(x) - (-2.91)) < 1e-12)
        }
        // A vector shorter than the schema: orders_90d (position 2) is missing -> logit = -1.31 + 2.24.
        [39.0, 7].withUnsafeBufferPointer { x in
            #expect(abs(scorer.logit(x) - 0.93) < 1e-12)
        }
    }

    @Test func sigmoidIsStableAtTheExtremes() {
        #expect(LogisticScorer.sigmoid(0) == 0.5)
        #expect(LogisticScorer.sigmoid(1000) == 1)
        #expect(LogisticScorer.sigmoid(-1000) == 0)
        #expect(LogisticScorer.sigmoid(.infinity) == 1)
        #expect(LogisticScorer.sigmoid(-.infinity) == 0)
        #expect(LogisticScorer.sigmoid(.nan) == 0)
        #expect(abs(LogisticScorer.sigmoid(-0.67) - 0.338497) < 1e-6)
    }

    @Test func topContributionsAreMostPositiveFirst() throws {
        let scorer = try Fixture.loadChurn(Fixture.churn()).scorer
        // Contributions: orders_90d (feature 0) -1.6, days_since_last_order (feature 1) +2.24.
        let out = UnsafeMutableBufferPointer<Contribution>.allocate(capacity: 5)
        defer { out.deallocate() }
        Self.customer.withUnsafeBufferPointer { x in
            let n = scorer.topContributions(x, k: 5, into: out)
            #expect(n == 2)
            #expect(out[0].feature == 1)
            #expect(abs(out[0].value - 2.24) < 1e-12)
            #expect(out[1].feature == 0)
            #expect(abs(out[1].value - (-1.6)) < 1e-12)
            #expect(scorer.featureNames[out[0].feature] == "days_since_last_order")

            #expect(scorer.topContributions(x, k: 1, into: out) == 1)
            #expect(out[0].feature == 1)
            #expect(scorer.topContributions(x, k: 0, into: out) == 0)
            #expect(scorer.topContributions(x, k: -3, into: out) == 0)
            // The buffer's capacity bounds k.
            #expect(scorer.topContributions(x, k: 5, into: UnsafeMutableBufferPointer(rebasing: out[0..<1])) == 1)
            #expect(out[0].feature == 1)
        }
    }

    @Test func topContributionsKeepFeatureOrderOnTiesAndSortManyFeatures() throws {
        var document = Fixture.churn()
        document["features"] = ["days_since_last_order", "views_24h", "orders_90d", "tickets_open", "complaints_30d", "cart_items"]
        document["standardize"] = ["mean": [0, 0, 0, 0, 0, 0], "scale": [1, 1, 1, 1, 1, 1]]
        document["weights"] = [1.0, 2.0, 1.0, -1.0, 3.0, 1.0]
        let scorer = try Fixture.loadChurn(document).scorer
        // With x = 1 everywhere, contributions equal the weights: 1, 2, 1, -1, 3, 1.
        // Most positive first, ties by feature order: 4 (3), 1 (2), 0 (1), 2 (1), 5 (1), 3 (-1).
        let out = UnsafeMutableBufferPointer<Contribution>.allocate(capacity: 6)
        defer { out.deallocate() }
        [1.0, 1, 1, 1, 1, 1].withUnsafeBufferPointer { x in
            #expect(scorer.topContributions(x, k: 6, into: out) == 6)
            #expect(out.map(\.feature) == [4, 1, 0, 2, 5, 3])
            #expect(out.map(\.value) == [3, 2, 1, 1, 1, -1])
            #expect(scorer.topContributions(x, k: 4, into: out) == 4)
            #expect(out[0..<4].map(\.feature) == [4, 1, 0, 2])
        }
    }

    @Test func schemaLooksUpPositions() {
        let schema = FeatureSchema(names: ["a", "b", "c"])
        #expect(schema.index(of: "a") == 0)
        #expect(schema.index(of: "c") == 2)
        #expect(schema.index(of: "d") == nil)
        #expect(schema.count == 3)
        #expect(schema == FeatureSchema(names: ["a", "b", "c"]))
        #expect(schema != FeatureSchema(names: ["a", "c", "b"]))
        #expect(FeatureSchema(names: ["a", "a"]).index(of: "a") == 0)
    }
}

@Suite("Eligibility")
struct EligibilityTests {
    /// An NBA model whose action 0 carries `rules` (JSON), on the fixture schema.
    static func rules(_ rules: [[String: Any]]) throws -> [EligibilityRule] {
        var document = Fixture.nba()
        Fixture.editAction(&document, 0) { $0["eligibility"] = rules }
        return try Fixture.loadNBA(document).actions[0].eligibility
    }

    @Test(arguments: [
        // (op, constant, tickets_open value, holds)
        ("<", 1.0, 0.0, true), ("<", 1.0, 1.0, false),
        ("<=", 1.0, 1.0, true), ("<=", 1.0, 2.0, false),
        (">", 1.0, 2.0, true), (">", 1.0, 1.0, false),
        (">=", 1.0, 1.0, true), (">=", 1.0, 0.0, false),
        ("==", 0.0, 0.0, true), ("==", 0.0, 1.0, false),
        ("!=", 0.0, 1.0, true), ("!=", 0.0, 0.0, false),
    ])
    func operators(op: String, constant: Double, ticketsOpen: Double, holds: Bool) throws {
        let rule = try #require(try Self.rules([["feature": "tickets_open", "op": op, "value": constant]]).first)
        [0, 0, 0, ticketsOpen, 0, 0].withUnsafeBufferPointer { x in
            #expect(rule.holds(x, churnProbability: 0) == holds)
        }
    }

    @Test func unknownValuesNeverSatisfyARule() throws {
        let rule = try #require(try Self.rules([["feature": "tickets_open", "op": "!=", "value": 0]]).first)
        [0, 0, 0, .nan, 0, 0].withUnsafeBufferPointer { x in
            #expect(!rule.holds(x, churnProbability: 0))
        }
        [0.0, 0, 0].withUnsafeBufferPointer { x in  // tickets_open (position 3) beyond the vector
            #expect(!rule.holds(x, churnProbability: 0))
        }
        let churnRule = try #require(try Self.rules([["feature": "churn_probability", "op": "<", "value": 1]]).first)
        [0.0].withUnsafeBufferPointer { x in
            #expect(!churnRule.holds(x, churnProbability: .nan))
        }
    }

    @Test func churnProbabilityPseudoFeature() throws {
        let rule = try #require(try Self.rules([["feature": "churn_probability", "op": ">=", "value": 0.35]]).first)
        #expect(rule.anyOf.first?.subject == .churnProbability)
        #expect(rule.description == "churn_probability >= 0.35")
        [Double]().withUnsafeBufferPointer { x in
            #expect(rule.holds(x, churnProbability: 0.35))
            #expect(!rule.holds(x, churnProbability: 0.3499))
        }
    }

    @Test func anyHoldsWhenOneConditionDoesAndRulesAreAnded() throws {
        let rules = try Self.rules([
            ["any": [["feature": "tickets_open", "op": ">=", "value": 1], ["feature": "complaints_30d", "op": ">=", "value": 1]]],
            ["feature": "cart_items", "op": "==", "value": 0],
        ])
        #expect(rules.map(\.description) == ["tickets_open >= 1 or complaints_30d >= 1", "cart_items == 0"])
        let any = rules[0]
        // positions: tickets_open 3, complaints_30d 4, cart_items 5
        [0, 0, 0, 1, 0, 0].withUnsafeBufferPointer { #expect(any.holds($0, churnProbability: 0)) }
        [0, 0, 0, 0, 2, 0].withUnsafeBufferPointer { #expect(any.holds($0, churnProbability: 0)) }
        [0, 0, 0, 0, 0, 0].withUnsafeBufferPointer { #expect(!any.holds($0, churnProbability: 0)) }

        var document = Fixture.nba()
        Fixture.editAction(&document, 0) {
            $0["eligibility"] = [
                ["any": [["feature": "tickets_open", "op": ">=", "value": 1], ["feature": "complaints_30d", "op": ">=", "value": 1]]],
                ["feature": "cart_items", "op": "==", "value": 0],
            ]
        }
        let action = try Fixture.loadNBA(document).actions[0]
        [0, 0, 0, 1, 0, 0].withUnsafeBufferPointer { #expect(action.isEligible($0, churnProbability: 0)) }
        [0, 0, 0, 1, 0, 3].withUnsafeBufferPointer { #expect(!action.isEligible($0, churnProbability: 0)) }
        [0, 0, 0, 0, 0, 0].withUnsafeBufferPointer { #expect(!action.isEligible($0, churnProbability: 0)) }
    }

    @Test func noRulesMeansAlwaysEligible() throws {
        var document = Fixture.nba()
        Fixture.editAction(&document, 0) { $0["eligibility"] = nil }
        let action = try Fixture.loadNBA(document).actions[0]
        #expect(action.eligibility.isEmpty)
        [Double]().withUnsafeBufferPointer { #expect(action.isEligible($0, churnProbability: 0)) }
    }
}

@Suite("Starter model files")
struct StarterModelTests {
    @Test func churnStarterLoadsWithTheServiceSchema() throws {
        let model = try ModelFile.loadChurn(Fixture.starterModel("churn.json"), file: "churn.json", schema: Fixture.serviceSchema)
        #expect(model.identity.name == "churn")
        #expect(model.trained != nil, "the shipped starter is trained, not hand-set; its trained block says how")
    }

    @Test func nbaStarterHasTheAgreedActions() throws {
        let model = try ModelFile.loadNBA(Fixture.starterModel("nba.json"), file: "nba.json", schema: Fixture.serviceSchema)
        #expect(model.identity.name == "nba")
        #expect(model.trained != nil)
        #expect(model.actions.map(\.id) == ["retention_offer", "service_recovery_call", "cart_reminder", "cross_sell_accessory", "promo_discount"])
        #expect(model.actions.map(\.value) == [15, 20, 5, 8, 6])
        #expect(model.actions.map(\.channels) == [["email", "sms", "call_center"], ["call_center"], ["push", "email", "app"],
                                                  ["web", "app", "email"], ["email", "push", "sms"]])
        #expect(model.actions.map { $0.eligibility.map(\.description) } == [
            ["churn_probability >= 0.35"],
            ["tickets_open >= 1 or complaints_30d >= 1"],
            ["cart_items >= 1", "tickets_open == 0"],
            ["orders_30d >= 1", "tickets_open == 0", "complaints_30d == 0"],
            ["tickets_open == 0", "complaints_30d == 0"],
        ])
    }
}

@Suite("Action table")
struct ActionTableTests {
    /// The flat table screens and scores exactly as the models do, bit for bit: the starter model and the
    /// fixture (whose rules use `any` and `churn_probability`), over random vectors with missing,
    /// non-finite and boundary values.
    @Test func screensAndScoresAsTheModels() throws {
        let starter = try ModelFile.loadNBA(Fixture.starterModel("nba.json"), file: "nba.json", schema: Fixture.serviceSchema)
        let fixture = try ModelFile.loadNBA(Fixture.data(Fixture.nba()), file: "nba.json", schema: Fixture.schema)
        var random = SystemRandomNumberGenerator()
        for (model, width) in [(starter, Fixture.serviceSchema.count), (fixture, Fixture.schema.count)] {
            let table = ActionTable(model)
            #expect(table.count == model.actions.count)
            var mismatches = 0
            for _ in 0..<2_000 {
                // Shorter vectors too: a feature past the end reads as missing.
                var x = (0..<Int.random(in: (width - 1)...width, using: &random)).map { _ -> Double in
                    switch Int.random(in: 0..<10, using: &random) {
                    case 0: .nan
                    case 1: .infinity
                    case 2: 0
                    case 3: 1
                    default: Double.random(in: -5...400, using: &random).rounded(.down)
                    }
                }
                if x.isEmpty { x = [0] }
                let churn = [0.35, 0.4, Double.random(in: 0...1, using: &random), .nan].randomElement(using: &random) ?? 0
                x.withUnsafeBufferPointer { x in
                    for (a, action) in model.actions.enumerated() {
                        if table.isEligible(a, x, churnProbability: churn) != action.isEligible(x, churnProbability: churn)
                            || table.probability(a, x).bitPattern != action.scorer.probability(x).bitPattern
                            || table.value(a) != action.value {
                            mismatches += 1
                        }
                    }
                }
            }
            #expect(mismatches == 0)
        }
    }
}
