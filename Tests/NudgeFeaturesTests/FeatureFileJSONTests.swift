import NudgeFeatures
import Testing

/// A feature file is strict JSON: what the shared parser lets through for other readers (a repeated key,
/// `NaN`, `Infinity`, a number beyond a Double) is refused as not JSON, on its line.
@Suite struct FeatureFileJSONTests {
    /// A file whose single feature is alone on line 4.
    static func file(feature: String) -> String { FeatureFileTests.file([feature]) }

    @Test(arguments: [
        (file(feature: #"{"name": "a", "events": ["page"], "aggregation": "count", "name": "b"}"#), 4,
         #"key "name" appears twice in one object"#),
        ("{\n  \"format\": \"nudge-features/1\",\n  \"features\": [],\n  \"format\": \"nudge-features/1\"\n}", 4,
         #"key "format" appears twice in one object"#),
        (file(feature: #"{"name": "a", "events": ["page"], "aggregation": "count", "cap": NaN}"#), 4,
         "expected a value (object, array, string, number, true, false or null)"),
        (file(feature: #"{"name": "a", "events": ["page"], "aggregation": "count", "cap": Infinity}"#), 4,
         "expected a value (object, array, string, number, true, false or null)"),
        (file(feature: #"{"name": "a", "events": ["page"], "aggregation": "count","# + "\n     " + #""missing": -Infinity}"#), 5,
         "expected digits in a number"),
        (file(feature: #"{"name": "a", "events": ["page"], "where": {"amount": {">=": 1e999}}, "aggregation": "count"}"#), 4,
         "number 1e999 is out of range"),
    ])
    func laxJSONIsRefusedOnItsLine(text: String, line: Int, reason: String) {
        #expect(FeatureFileTests.refused(text) == FeatureFileError(file: "f.json", line: line, problem: .notJSON(reason: reason)))
    }

    @Test func theFirstProblemInDocumentOrderIsReported() {
        let text = Self.file(feature: "{\"name\": \"a\", \"cap\": NaN,\n     \"name\": \"b\", \"events\": [\"page\"], \"aggregation\": \"count\"}")
        #expect(FeatureFileTests.refused(text) == FeatureFileError(
            file: "f.json", line: 4, problem: .notJSON(reason: "expected a value (object, array, string, number, true, false or null)")))
    }
}
