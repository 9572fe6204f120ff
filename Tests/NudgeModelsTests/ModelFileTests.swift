import Foundation
import NudgeModels
import Testing

@Suite("Model files: loading")
struct ModelFileLoadingTests {
    @Test func churnLoadsAndBindsToTheSchema() throws {
        let model = try Fixture.loadChurn(Fixture.churn())
        #expect(model.identity == ModelIdentity(name: "churn", version: "2026-11-20.1"))
        #expect(model.identity.description == "churn@2026-11-20.1")
        #expect(model.scorer.featureNames == ["orders_90d", "days_since_last_order"])
        #expect(model.scorer.featureIndices == [2, 0])
        #expect(model.scorer.mean == [1.2, 14.0])
        #expect(model.scorer.scale == [1.1, 12.5])
        #expect(model.scorer.intercept == -1.31)
        #expect(model.scorer.weights == [-0.8, 1.12])
        // The unknown "trainer" key inside trained is ignored.
        #expect(model.trained == TrainingSummary(at: "2026-11-20T04:00:00Z", rows: 182311, auc: 0.83, logloss: 0.41))
    }

    @Test func nbaLoadsActionsChannelsAndRules() throws {
        let model = try Fixture.loadNBA(Fixture.nba())
        #expect(model.identity.description == "nba@2026-11-20.1")
        #expect(model.actions.map(\.id) == ["retention_offer", "promo_discount", "service_recovery_call"])
        #expect(model.actions.map(\.value) == [15, 6, 20])
        #expect(model.actions[0].channels == ["email", "sms"])
        #expect(model.actions[0].eligibility.map(\.description) == ["churn_probability >= 0.4"])
        #expect(model.actions[1].eligibility.map(\.description) == ["tickets_open == 0"])
        #expect(model.actions[2].eligibility.map(\.description) == ["tickets_open >= 1 or complaints_30d >= 1"])
        #expect(model.actions[2].scorer.featureIndices == [2, 0])
        #expect(model.trained == nil)
        #expect(model.index(ofAction: "promo_discount") == 1)
        #expect(model.index(ofAction: "nope") == nil)
    }

    /// A trainer's own metadata has its places: anything under `trained`, and an action's `fitted` and
    /// `trained`. (Other unknown keys are refused: see the refusal cases.)
    @Test func metadataGoesUnderTrainedAndFitted() throws {
        var churn = Fixture.churn()
        churn["trained"] = ["at": "2026-11-20T04:00:00Z", "notes": "hand-set", "calibration": [["lower": 0, "upper": 0.1]]]
        #expect(try Fixture.loadChurn(churn).identity.name == "churn")
        var nba = Fixture.nba()
        Fixture.editAction(&nba, 0) {
            $0["fitted"] = true
            $0["trained"] = ["rows": 12, "anything": [1, 2, 3]]
        }
        #expect(try Fixture.loadNBA(nba).actions[0].id == "retention_offer")
    }

    /// A model that recorded what its features computed is refused when the service computes one otherwise,
    /// naming the feature and both definitions; names the schema cannot check, or the file does not record,
    /// pass on the names alone.
    @Test func aFeatureRedefinedSinceTrainingIsRefused() throws {
        let names = Fixture.schema.names
        let served = names.map { "count of [\($0)] over 7d@6h, missing 0.0" }
        let schema = FeatureSchema(names: names, definitions: served)
        var document = Fixture.churn()
        var trained = document["trained"] as? [String: Any] ?? [:]
        trained["feature_definitions"] = ["orders_90d": served[2], "days_since_last_order": served[0]]
        document["trained"] = trained
        #expect(throws: Never.self) { try ModelFile.loadChurn(Fixture.data(document), file: "churn.json", schema: schema) }
        trained["feature_definitions"] = ["orders_90d": "count of [orders_90d] over 30d@1d, missing 0.0"]
        document["trained"] = trained
        do {
            _ = try ModelFile.loadChurn(Fixture.data(document), file: "churn.json", schema: schema)
            Issue.record("a model trained on another orders_90d was accepted")
        } catch {
            #expect(error.field == "trained.feature_definitions.orders_90d")
            #expect(error.problem.contains("over 30d@1d") && error.problem.contains("over 7d@6h") && error.problem.contains("retrain"))
        }
        // A schema that knows no definitions checks names only, as before.
        #expect(throws: Never.self) { try ModelFile.loadChurn(Fixture.data(document), file: "churn.json", schema: Fixture.schema) }
        // So does the NBA file, whose features all actions share.
        var nba = Fixture.nba()
        nba["trained"] = ["feature_definitions": ["days_since_last_order": "time_since_last of [x] over lifetime, missing 365.0"]]
        #expect(throws: ModelFileError.self) { try ModelFile.loadNBA(Fixture.data(nba), file: "nba.json", schema: schema) }
    }

    @Test func trainedIsOptional() throws {
        var document = Fixture.churn()
        document["trained"] = nil
        #expect(try Fixture.loadChurn(document).trained == nil)
    }

    @Test func errorDescriptionNamesFileFieldAndProblem() {
        let error = ModelFileError(file: "nba.json", field: "actions[2].weights[4]", problem: "is NaN")
        #expect(error.description == "nba.json: actions[2].weights[4]: is NaN")
        #expect(ModelFileError(file: "x.json", field: "", problem: "is not valid JSON").description == "x.json: is not valid JSON")
    }
}

/// One way to break a model file, the field the refusal must name, and words its message must hold.
struct Refusal: Sendable, CustomTestStringConvertible {
    let name: String
    let field: String
    let says: String
    let edit: @Sendable (inout [String: Any]) -> Void
    var testDescription: String { name }
}

@Suite("Model files: refusals name the field")
struct ModelFileRefusalTests {
    static let churnCases: [Refusal] = [
        Refusal(name: "format missing", field: "format", says: "is missing") { $0["format"] = nil },
        Refusal(name: "format wrong", field: "format", says: "is 'nba-logistic/2'; this service reads 'nba-logistic/1'") { $0["format"] = "nba-logistic/2" },
        Refusal(name: "format not a string", field: "format", says: "expected a string but found a number") { $0["format"] = 1 },
        Refusal(name: "name missing", field: "name", says: "is missing") { $0["name"] = nil },
        Refusal(name: "name empty", field: "name", says: "non-empty") { $0["name"] = "" },
        Refusal(name: "name with @", field: "name", says: "without '@'") { $0["name"] = "churn@x" },
        Refusal(name: "version missing", field: "version", says: "is missing") { $0["version"] = nil },
        Refusal(name: "version empty", field: "version", says: "is empty") { $0["version"] = "" },
        Refusal(name: "task missing", field: "task", says: "is missing") { $0["task"] = nil },
        Refusal(name: "task of an NBA file", field: "task", says: "is 'actions' but 'binary' is expected here; this is an NBA model file") { $0["task"] = "actions" },
        Refusal(name: "task unknown", field: "task", says: "set it to 'binary'") { $0["task"] = "regression" },
        Refusal(name: "features missing", field: "features", says: "is missing") { $0["features"] = nil },
        Refusal(name: "features empty", field: "features", says: "is empty") { $0["features"] = [String]() },
        Refusal(name: "features not an array", field: "features", says: "expected an array but found a string") { $0["features"] = "orders_90d" },
        Refusal(name: "feature duplicated", field: "features[1]", says: "'orders_90d' is listed twice (also features[0])") { $0["features"] = ["orders_90d", "orders_90d"] },
        Refusal(name: "feature not in schema", field: "features[1]",
                says: "feature 'foo' is not defined in the feature schema; defined: days_since_last_order, views_24h, orders_90d, tickets_open, complaints_30d, cart_items") {
            $0["features"] = ["orders_90d", "foo"]
        },
        Refusal(name: "feature not a string", field: "features[0]", says: "expected a string but found a number") { $0["features"] = [3, "orders_90d"] },
        Refusal(name: "standardize missing", field: "standardize", says: "is missing") { $0["standardize"] = nil },
        Refusal(name: "mean missing", field: "standardize.mean", says: "is missing") { Fixture.editStandardize(&$0) { $0["mean"] = nil } },
        Refusal(name: "mean too short", field: "standardize.mean", says: "has 1 values but features has 2") { Fixture.editStandardize(&$0) { $0["mean"] = [1.0] } },
        Refusal(name: "scale too long", field: "standardize.scale", says: "has 3 values but features has 2") { Fixture.editStandardize(&$0) { $0["scale"] = [1.0, 2.0, 3.0] } },
        Refusal(name: "scale zero", field: "standardize.scale[1]", says: "is 0.0; a scale must be positive") { Fixture.editStandardize(&$0) { $0["scale"] = [1.1, 0] } },
        Refusal(name: "scale negative", field: "standardize.scale[0]", says: "is -1.1; a scale must be positive") { Fixture.editStandardize(&$0) { $0["scale"] = [-1.1, 12.5] } },
        Refusal(name: "mean NaN token", field: "standardize.mean[0]", says: "is NaN, which is not a finite number") { Fixture.editStandardize(&$0) { $0["mean"] = ["RAW:NaN", 14.0] } },
        Refusal(name: "scale Infinity token", field: "standardize.scale[1]", says: "is Infinity, which is not a finite number") { Fixture.editStandardize(&$0) { $0["scale"] = [1.1, "RAW:Infinity"] } },
        Refusal(name: "weight overflowing to infinity", field: "weights[1]", says: "is 1e999, which is not a finite number") { $0["weights"] = [-0.8, "RAW:1e999"] },
        Refusal(name: "weight overflowing to -infinity", field: "weights[0]", says: "is -1e999") { $0["weights"] = ["RAW:-1e999", 1.12] },
        Refusal(name: "weight \"NaN\" as a string", field: "weights[0]", says: "expected a number but found a string") { $0["weights"] = ["NaN", 1.12] },
        Refusal(name: "weights too short", field: "weights", says: "has 1 values but features has 2; give one weight per feature") { $0["weights"] = [1.0] },
        Refusal(name: "weights missing", field: "weights", says: "is missing") { $0["weights"] = nil },
        Refusal(name: "intercept -Infinity", field: "intercept", says: "is -Infinity") { $0["intercept"] = "RAW:-Infinity" },
        Refusal(name: "intercept missing", field: "intercept", says: "is missing") { $0["intercept"] = nil },
        Refusal(name: "intercept null", field: "intercept", says: "is missing") { $0["intercept"] = NSNull() },
        Refusal(name: "trained.rows fractional", field: "trained.rows", says: "expected a whole number") { $0["trained"] = ["rows": 1.5] },
        Refusal(name: "trained.auc infinite", field: "trained.auc", says: "is 1e400") { $0["trained"] = ["auc": "RAW:1e400"] },
        Refusal(name: "unknown key", field: "notes", says: "is not a key here; use features, format, intercept, name, standardize, task, trained, version, weights (a trainer's own metadata goes under \"trained\")") {
            $0["notes"] = "hand-set"
        },
        Refusal(name: "misspelt key", field: "weigths", says: "is not a key here") { $0["weigths"] = [0.0, 0.0] },
        Refusal(name: "unknown key in standardize", field: "standardize.center", says: "use mean, scale") { Fixture.editStandardize(&$0) { $0["center"] = [0.0, 0.0] } },
    ]

    @Test(arguments: churnCases)
    func churnRefusal(_ refusal: Refusal) {
        var document = Fixture.churn()
        refusal.edit(&document)
        #expect(throws: ModelFileError.self) { try Fixture.loadChurn(document) }
        do {
            _ = try Fixture.loadChurn(document)
        } catch {
            #expect(error.file == "churn.json")
            #expect(error.field == refusal.field)
            #expect(error.problem.contains(refusal.says), "\(error)")
            #expect(error.description.contains("churn.json: \(refusal.field): "))
        }
    }

    static let nbaCases: [Refusal] = [
        Refusal(name: "task of a churn file", field: "task", says: "this is a churn (binary) model file") { $0["task"] = "binary" },
        Refusal(name: "actions missing", field: "actions", says: "is missing") { $0["actions"] = nil },
        Refusal(name: "actions empty", field: "actions", says: "is empty; list at least one action") { $0["actions"] = [Any]() },
        Refusal(name: "action not an object", field: "actions[0]", says: "expected an object but found a string") { $0["actions"] = ["retention_offer"] },
        Refusal(name: "action id missing", field: "actions[1].id", says: "is missing") { Fixture.editAction(&$0, 1) { $0["id"] = nil } },
        Refusal(name: "action id empty", field: "actions[0].id", says: "is empty") { Fixture.editAction(&$0, 0) { $0["id"] = "" } },
        Refusal(name: "action id none", field: "actions[0].id", says: "'none' is reserved") { Fixture.editAction(&$0, 0) { $0["id"] = "none" } },
        Refusal(name: "action id duplicated", field: "actions[2].id", says: "'retention_offer' is already the id of actions[0]") { Fixture.editAction(&$0, 2) { $0["id"] = "retention_offer" } },
        Refusal(name: "action weight infinite", field: "actions[2].weights[1]", says: "is 1e999") { Fixture.editAction(&$0, 2) { $0["weights"] = [0.0, "RAW:1e999"] } },
        Refusal(name: "action weights short", field: "actions[1].weights", says: "has 1 values but features has 2") { Fixture.editAction(&$0, 1) { $0["weights"] = [0.1] } },
        Refusal(name: "action intercept NaN", field: "actions[0].intercept", says: "is NaN") { Fixture.editAction(&$0, 0) { $0["intercept"] = "RAW:NaN" } },
        Refusal(name: "action value negative", field: "actions[1].value", says: "is -6.0; a value must be >= 0") { Fixture.editAction(&$0, 1) { $0["value"] = -6.0 } },
        Refusal(name: "action value infinite", field: "actions[1].value", says: "is Infinity") { Fixture.editAction(&$0, 1) { $0["value"] = "RAW:Infinity" } },
        Refusal(name: "action value missing", field: "actions[1].value", says: "is missing") { Fixture.editAction(&$0, 1) { $0["value"] = nil } },
        Refusal(name: "channels missing", field: "actions[0].channels", says: "is missing") { Fixture.editAction(&$0, 0) { $0["channels"] = nil } },
        Refusal(name: "channels empty", field: "actions[0].channels", says: "is empty; list at least one channel") { Fixture.editAction(&$0, 0) { $0["channels"] = [String]() } },
        Refusal(name: "channel unknown", field: "actions[0].channels[1]", says: "'fax' is not a channel; use one of web, app, store, call_center") { Fixture.editAction(&$0, 0) { $0["channels"] = ["email", "fax"] } },
        Refusal(name: "channel other", field: "actions[0].channels[0]", says: "'other' is not a channel") { Fixture.editAction(&$0, 0) { $0["channels"] = ["other"] } },
        Refusal(name: "channel repeated", field: "actions[0].channels[1]", says: "listed twice") { Fixture.editAction(&$0, 0) { $0["channels"] = ["sms", "sms"] } },
        Refusal(name: "eligibility not an array", field: "actions[0].eligibility", says: "expected an array but found an object") {
            Fixture.editAction(&$0, 0) { $0["eligibility"] = ["feature": "tickets_open", "op": "==", "value": 0] }
        },
        Refusal(name: "eligibility op unknown", field: "actions[1].eligibility[0].op", says: "'=~' is not a comparison; use one of < <= > >= == !=") {
            Fixture.editAction(&$0, 1) { $0["eligibility"] = [["feature": "tickets_open", "op": "=~", "value": 0]] }
        },
        Refusal(name: "eligibility op missing", field: "actions[1].eligibility[0].op", says: "is missing") {
            Fixture.editAction(&$0, 1) { $0["eligibility"] = [["feature": "tickets_open", "value": 0]] }
        },
        Refusal(name: "eligibility feature unknown", field: "actions[1].eligibility[1].feature", says: "feature 'ticket_open' is not defined in the feature schema; defined: days_since_last_order") {
            Fixture.editAction(&$0, 1) {
                $0["eligibility"] = [["feature": "tickets_open", "op": "==", "value": 0], ["feature": "ticket_open", "op": "==", "value": 0]]
            }
        },
        Refusal(name: "eligibility value NaN", field: "actions[1].eligibility[0].value", says: "is NaN") {
            Fixture.editAction(&$0, 1) { $0["eligibility"] = [["feature": "tickets_open", "op": "==", "value": "RAW:NaN"]] }
        },
        Refusal(name: "eligibility any empty", field: "actions[2].eligibility[0].any", says: "is empty; list at least one condition") {
            Fixture.editAction(&$0, 2) { $0["eligibility"] = [["any": [Any]()]] }
        },
        Refusal(name: "eligibility any with unknown feature", field: "actions[2].eligibility[0].any[1].feature", says: "feature 'complaints' is not defined") {
            Fixture.editAction(&$0, 2) {
                $0["eligibility"] = [["any": [["feature": "tickets_open", "op": ">=", "value": 1], ["feature": "complaints", "op": ">=", "value": 1]]]]
            }
        },
        Refusal(name: "shared feature not in schema", field: "features[0]", says: "feature 'revenue_90d' is not defined") { $0["features"] = ["revenue_90d", "orders_90d"] },
        // A misspelt or null eligibility would leave the action without its rules: a promotion to a customer
        // with an open ticket.
        Refusal(name: "eligibility misspelt", field: "actions[1].eligibilty", says: "is not a key here; use channels, eligibility, fitted, id") {
            Fixture.editAction(&$0, 1) {
                $0["eligibilty"] = $0["eligibility"]
                $0["eligibility"] = nil
            }
        },
        Refusal(name: "eligibility null", field: "actions[1].eligibility", says: "is null; list the rules that must all hold, or [] for none") {
            Fixture.editAction(&$0, 1) { $0["eligibility"] = NSNull() }
        },
        Refusal(name: "eligibility condition beside any", field: "actions[2].eligibility[0].feature", says: "not both") {
            Fixture.editAction(&$0, 2) {
                $0["eligibility"] = [["any": [["feature": "tickets_open", "op": ">=", "value": 1]], "feature": "cart_items"]]
            }
        },
        Refusal(name: "eligibility any null", field: "actions[2].eligibility[0].any", says: "is null") {
            Fixture.editAction(&$0, 2) { $0["eligibility"] = [["any": NSNull(), "feature": "cart_items", "op": ">=", "value": 1]] }
        },
        Refusal(name: "eligibility condition with an unknown key", field: "actions[1].eligibility[0].unless", says: "a condition is {feature, op, value}") {
            Fixture.editAction(&$0, 1) { $0["eligibility"] = [["feature": "tickets_open", "op": "==", "value": 0, "unless": "vip"]] }
        },
    ]

    @Test(arguments: nbaCases)
    func nbaRefusal(_ refusal: Refusal) {
        var document = Fixture.nba()
        refusal.edit(&document)
        do {
            _ = try Fixture.loadNBA(document)
            Issue.record("\(refusal.name) was accepted")
        } catch {
            #expect(error.file == "nba.json")
            #expect(error.field == refusal.field)
            #expect(error.problem.contains(refusal.says), "\(error)")
        }
    }

    @Test func moreThan255ActionsAreRefused() {
        var document = Fixture.nba()
        let template = (document["actions"] as? [[String: Any]] ?? [])[1]
        document["actions"] = (0..<256).map { i -> [String: Any] in
            var action = template
            action["id"] = "a\(i)"
            return action
        }
        #expect(throws: ModelFileError(file: "nba.json", field: "actions", problem: "has 256 actions; at most 255 are supported")) {
            try Fixture.loadNBA(document)
        }
    }

    @Test(arguments: [
        ("{\"format\": \"nba-logistic/1\",\n  \"name\": }", "is not valid JSON: unexpected character '}'; expected a value at line 2, column 11"),
        ("", "is not valid JSON: unexpected end of document; expected a value at line 1, column 1"),
        ("{\"a\":1} x", "is not valid JSON: unexpected text after the end of the document at line 1, column 9"),
        ("{\"a\":\"\u{01}\"}", "is not valid JSON: control character in a string; escape it at line 1, column 7"),
        ("{\"a\":01}", "is not valid JSON: expected ',' or '}' in an object at line 1, column 7"),
        ("[1, 2]", "expected an object but found an array"),
    ])
    func documentLevelProblemsHaveNoField(text: String, problem: String) {
        do {
            _ = try ModelFile.loadChurn(Data(text.utf8), file: "churn.json", schema: Fixture.schema)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.field == "")
            #expect(error.problem == problem)
        }
    }

    @Test func deepNestingIsRefusedNotCrashing() {
        let text = "{\"x\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"
        do {
            _ = try ModelFile.loadChurn(Data(text.utf8), file: "churn.json", schema: Fixture.schema)
            Issue.record("accepted deep nesting")
        } catch {
            #expect(error.problem.contains("nesting deeper than 64 levels"))
        }
    }

    @Test func duplicateKeysAreRefusedByName() {
        var document = Fixture.churn()
        document["weights"] = "DUP"
        let text = String(decoding: Fixture.data(document), as: UTF8.self)
            .replacingOccurrences(of: "\"weights\":\"DUP\"", with: "\"weights\":[1,2],\"weights\":[1,2]")
        #expect(throws: ModelFileError(file: "churn.json", field: "weights", problem: "appears twice in the same object; keep only one")) {
            try ModelFile.loadChurn(Data(text.utf8), file: "churn.json", schema: Fixture.schema)
        }
    }

    @Test func stringEscapesAreDecoded() throws {
        // "\u0063hurn" is "churn"; the surrogate pair is one scalar, U+1F600.
        var document = Fixture.churn()
        document["name"] = "NAME"
        let text = String(decoding: Fixture.data(document), as: UTF8.self)
            .replacingOccurrences(of: "\"NAME\"", with: #""\u0063hurn\ud83d\ude00""#)
        let model = try ModelFile.loadChurn(Data(text.utf8), file: "churn.json", schema: Fixture.schema)
        #expect(model.identity.name == "churn\u{1F600}")
    }
}
