#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NudgeEvents
import NudgeJSON

extension FeatureSet {
    /// The `format` a feature file declares.
    public static let fileFormat = "nudge-features/1"

    /// Loads a declarative feature file, refusing the first invalid definition with its line and the reason.
    ///
    /// The file is JSON: `{"format": "nudge-features/1", "description": "...", "features": [...]}`. Each
    /// feature is an object, in output order:
    /// - `name` (required): what models call it; unique. `description`: free text, ignored.
    /// - `events` (required): Segment event names (`"Product Viewed"`, `"Order Completed"`, ...), `"page"`,
    ///   `"screen"`, `"identify"`, `"other"`, or `"*"` for every event.
    /// - `channels`: wire channel names (`"store"`, `"call_center"`, ...); absent means any channel.
    /// - `where`: property conditions, all of which must hold: `{"category": "outdoor"}`,
    ///   `{"category": ["outdoor", "garden"]}`, `{"product_id": {"not_in": ["p-1"]}}` (operators `==`, `!=`,
    ///   `in`, `not_in`), `{"amount": {">=": 100}}`, `{"score": {"<=": 6}}` (operators `==`, `!=`, `<`, `<=`,
    ///   `>`, `>=`; several in one object all apply). Properties: category, product_id, amount, score, and
    ///   any other top-level key of `properties` as `properties.<key>`, compared as numbers when the
    ///   condition is written with numbers, else as text (see ``TextField/property(_:)``).
    /// - `aggregation` (required): `count`, `sum` / `min` / `max` / `avg` (`of`: `"amount"`, the default,
    ///   `"score"` or `"properties.<key>"`), `last` (`of` as for sum; `"score"` by default), `time_since_last`
    ///   (days; `missing` required), `distinct_count` (`of`: `"category"`, `"product_id"` or
    ///   `"properties.<key>"`), `open_count` (`closes`: events), `net_count` (`removes`, `resets`:
    ///   events). See ``Aggregation`` for memory and accuracy. A set reads at most
    ///   ``FeatureSet/maxReadProperties`` keys by name.
    /// - `window`: `"lifetime"` (the default) or a whole number and unit: `"5m"`, `"1h"`, `"24h"`, `"7d"`,
    ///   `"30d"`, `"90d"` (units s, m, h, d, w). `resolution`: bucket width, defaulting as
    ///   ``FeatureWindow/defaultResolutionMillis(forDurationMillis:)`` says.
    /// - `missing`: the value when there is nothing to report (default 0). `cap`: an upper bound on values.
    /// - Derived features have `name`, `expression` (e.g. `"adds_24h / max(views_24h, 1)"`, see
    ///   ``FeatureExpression``), and optionally `missing` and `cap`; they may use any event feature and the
    ///   derived features above them.
    ///
    /// Unknown fields are refused (a typo would otherwise silently change a feature), as are fields that do
    /// not apply to the aggregation.
    public static func load(file path: String) throws(FeatureFileError) -> FeatureSet {
        let bytes: [UInt8]
        do { bytes = try FileBytes.read(path) } catch { throw FeatureFileError(file: path, line: 0, problem: .unreadable(reason: error.reason)) }
        return try parse(bytes, file: path)
    }

    /// Parses the text of a feature file; `file` names it in errors.
    public static func parse(_ text: String, file: String = "features.json") throws(FeatureFileError) -> FeatureSet {
        try parse(Array(text.utf8), file: file)
    }

    static func parse(_ bytes: [UInt8], file: String) throws(FeatureFileError) -> FeatureSet {
        let document: JSONDocument
        do { document = try JSONDocument(parsing: bytes) } catch {
            throw FeatureFileError(file: file, line: error.location.line, problem: .notJSON(reason: error.reason))
        }
        return try FeatureFileReader(document: document, file: file).read()
    }
}

/// Reads a file's bytes without Foundation.
private enum FileBytes {
    struct Failure: Error { let reason: String }

    static func read(_ path: String) throws(Failure) -> [UInt8] {
        guard let handle = fopen(path, "rb") else { throw Failure(reason: String(cString: strerror(errno))) }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, handle) }
            bytes.append(contentsOf: chunk[0..<count])
            if count < chunk.count {
                guard ferror(handle) == 0 else { throw Failure(reason: "read error") }
                return bytes
            }
            // A feature file is a few kilobytes; refuse anything absurd rather than exhaust memory.
            guard bytes.count <= 16 << 20 else { throw Failure(reason: "larger than 16 MiB") }
        }
    }
}

/// Turns a parsed feature file into definitions, remembering where each came from so every error has a line.
private struct FeatureFileReader {
    let document: JSONDocument
    let file: String

    static let topLevelFields = ["format", "description", "features"]
    static let eventFeatureFields = ["name", "description", "events", "channels", "where", "aggregation", "of",
                                     "closes", "removes", "resets", "window", "resolution", "missing", "cap"]
    static let derivedFeatureFields = ["name", "description", "expression", "missing", "cap"]

    /// Where one feature was written: its object and each field's value.
    struct Origin {
        let offset: Int
        var fields: [String: Int] = [:]
    }

    func failure(_ offset: Int, _ problem: FeatureFileError.Problem) -> FeatureFileError {
        FeatureFileError(file: file, line: document.location(of: offset).line, problem: problem)
    }

    func read() throws(FeatureFileError) -> FeatureSet {
        let root = document.root
        try refuseLaxJSON(root)
        guard case .object(let members) = root.content else {
            throw failure(root.offset, .wrongType(feature: nil, field: "(document)", expected: "an object", found: root.kindName))
        }
        var format: JSONValue?
        var features: JSONValue?
        for member in members {
            switch member.key {
            case "format": format = member.value
            case "features": features = member.value
            case "description": _ = try string(member.value, feature: nil, field: "description")
            default: throw failure(member.keyOffset, .unknownField(feature: nil, field: member.key, allowed: Self.topLevelFields))
            }
        }
        guard let format, case .string(let declared) = format.content, declared == FeatureSet.fileFormat else {
            var found: String?
            if let format { found = if case .string(let text) = format.content { text } else { format.kindName } }
            throw failure(format?.offset ?? root.offset, .wrongFormat(found: found))
        }
        guard let features else { throw failure(root.offset, .missingField(feature: nil, field: "features")) }
        guard case .array(let objects) = features.content else {
            throw failure(features.offset, .wrongType(feature: nil, field: "features", expected: "an array", found: features.kindName))
        }

        var definitions: [FeatureDefinition] = []
        var origins: [Origin] = []
        var names: [String: Int] = [:]
        for object in objects {
            let (definition, origin) = try self.definition(object, position: definitions.count)
            if names[definition.name] != nil {
                throw failure(origin.fields["name"] ?? origin.offset, .invalid(.duplicateName(definition.name)))
            }
            names[definition.name] = definitions.count
            definitions.append(definition)
            origins.append(origin)
        }
        do {
            return try FeatureSet(definitions)
        } catch {
            let (name, field) = Self.location(of: error)
            let origin = name.flatMap { names[$0] }.map { origins[$0] }
            // Too many buckets is the resolution's doing when the file gives one.
            var fields = field.map { [$0] } ?? []
            if case .tooManyBuckets = error { fields.insert("resolution", at: 0) }
            let offset = origin.flatMap { origin in fields.lazy.compactMap { origin.fields[$0] }.first } ?? origin?.offset ?? features.offset
            throw failure(offset, .invalid(error))
        }
    }

    /// The feature and field a compile error is about, for its line.
    static func location(of error: FeatureSetError) -> (feature: String?, field: String?) {
        switch error {
        case .emptyName: (nil, nil)
        case .duplicateName(let name), .badName(let name, _): (name, "name")
        case .noKinds(let name): (name, "events")
        case .noChannels(let name): (name, "channels")
        case .nonPositiveWindow(let name, _), .tooManyBuckets(let name, _, _, _), .gaugeNeedsLifetimeWindow(let name, _),
             .derivedTakesNoWindow(let name):
            (name, "window")
        case .resolutionDoesNotDivide(let name, _): (name, "resolution")
        case .conflictingKinds(let name, _): (name, "aggregation")
        case .nonFiniteValue(let name, _): (name, nil)
        case .unknownReference(let name, _): (name, "expression")
        case .emptyCondition(let name, _): (name, "where")
        case .badProperty(let name, _, _): (name, nil)
        case .tooManyProperties(let name, let field, _, _): (name, field)
        }
    }

    // MARK: One feature

    func definition(_ value: JSONValue, position: Int) throws(FeatureFileError) -> (FeatureDefinition, Origin) {
        guard case .object(let members) = value.content else {
            throw failure(value.offset, .wrongType(feature: nil, field: "features[]", expected: "an object", found: value.kindName))
        }
        var origin = Origin(offset: value.offset)
        var fields: [String: JSONValue] = [:]
        for member in members {
            fields[member.key] = member.value
            origin.fields[member.key] = member.value.offset
        }
        guard let nameValue = fields["name"] else { throw failure(value.offset, .missingField(feature: nil, field: "name")) }
        let name = try string(nameValue, feature: nil, field: "name")
        guard !name.isEmpty else { throw failure(nameValue.offset, .invalid(.emptyName(position: position))) }
        let derived = fields["expression"] != nil
        let allowed = derived ? Self.derivedFeatureFields : Self.eventFeatureFields
        for member in members where !allowed.contains(member.key) {
            if derived, Self.eventFeatureFields.contains(member.key) {
                throw failure(member.keyOffset, .notApplicable(feature: name, field: member.key, aggregation: "a derived feature (expression)"))
            }
            throw failure(member.keyOffset, .unknownField(feature: name, field: member.key, allowed: allowed))
        }
        if let description = fields["description"] { _ = try string(description, feature: name, field: "description") }
        let missing = try fields["missing"].map { (v: JSONValue) throws(FeatureFileError) in try number(v, feature: name, field: "missing") } ?? 0
        let cap = try fields["cap"].map { (v: JSONValue) throws(FeatureFileError) in try number(v, feature: name, field: "cap") }

        if let expressionValue = fields["expression"] {
            let text = try string(expressionValue, feature: name, field: "expression")
            let expression: FeatureExpression
            do { expression = try FeatureExpression.parse(text) } catch {
                throw failure(expressionValue.offset, .badExpression(feature: name, error: error))
            }
            return (FeatureDefinition(name: name, expression: expression, missingValue: missing, cap: cap), origin)
        }

        guard let eventsValue = fields["events"] else { throw failure(value.offset, .missingField(feature: name, field: "events")) }
        guard let aggregationValue = fields["aggregation"] else {
            throw failure(value.offset, .missingField(feature: name, field: "aggregation"))
        }
        let kinds = try events(eventsValue, feature: name, field: "events")
        let channels = try fields["channels"].map { (v: JSONValue) throws(FeatureFileError) in try self.channels(v, feature: name) }
        let conditions = try fields["where"].map { (v: JSONValue) throws(FeatureFileError) in try self.conditions(v, feature: name) } ?? []
        let aggregation = try self.aggregation(aggregationValue, fields: fields, feature: name)
        // Time since an event that never happened has no natural value, and 0 would read as "just now".
        if aggregation == .timeSinceLast && fields["missing"] == nil {
            throw failure(aggregationValue.offset, .missingField(feature: name, field: "missing"))
        }
        let window = try self.window(fields, feature: name)
        let filter = EventFilter(kinds: kinds, channels: channels, conditions: conditions)
        return (FeatureDefinition(name: name, filter: filter, aggregation: aggregation, window: window, missingValue: missing, cap: cap),
                origin)
    }

    func aggregation(_ value: JSONValue, fields: [String: JSONValue], feature: String) throws(FeatureFileError) -> Aggregation {
        let name = try string(value, feature: feature, field: "aggregation")
        // Which of the optional aggregation fields each aggregation takes.
        let takes: [String]
        let aggregation: Aggregation
        switch name {
        case "count": takes = []; aggregation = .count
        case "last":
            takes = ["of"]
            aggregation = .last(try numberOf(fields, feature: feature) ?? .score)
        case "time_since_last": takes = []; aggregation = .timeSinceLast
        case "sum", "min", "max", "avg":
            takes = ["of"]
            let field = try numberOf(fields, feature: feature) ?? .amount
            aggregation = switch name {
            case "sum": .sum(field)
            case "min": .minimum(field)
            case "max": .maximum(field)
            default: .average(field)
            }
        case "distinct_count":
            takes = ["of"]
            guard let of = fields["of"] else { throw failure(value.offset, .missingField(feature: feature, field: "of")) }
            aggregation = .distinctCount(try textField(of, feature: feature))
        case "open_count":
            takes = ["closes"]
            guard let closes = fields["closes"] else { throw failure(value.offset, .missingField(feature: feature, field: "closes")) }
            aggregation = .openCount(closes: try events(closes, feature: feature, field: "closes"))
        case "net_count":
            takes = ["removes", "resets"]
            let removes = try fields["removes"].map { (v: JSONValue) throws(FeatureFileError) in try events(v, feature: feature, field: "removes") } ?? []
            let resets = try fields["resets"].map { (v: JSONValue) throws(FeatureFileError) in try events(v, feature: feature, field: "resets") } ?? []
            aggregation = .netCount(removes: removes, resets: resets)
        default:
            throw failure(value.offset, .unknownAggregation(feature: feature, name: name))
        }
        for field in ["of", "closes", "removes", "resets"] where !takes.contains(field) {
            if let stray = fields[field] { throw failure(stray.offset, .notApplicable(feature: feature, field: field, aggregation: name)) }
        }
        return aggregation
    }

    func window(_ fields: [String: JSONValue], feature: String) throws(FeatureFileError) -> FeatureWindow {
        guard let windowValue = fields["window"] else {
            if let resolution = fields["resolution"] {
                throw failure(resolution.offset, .notApplicable(feature: feature, field: "resolution", aggregation: "the lifetime window"))
            }
            return .lifetime
        }
        let text = try string(windowValue, feature: feature, field: "window")
        if text == "lifetime" {
            if let resolution = fields["resolution"] {
                throw failure(resolution.offset, .notApplicable(feature: feature, field: "resolution", aggregation: "the lifetime window"))
            }
            return .lifetime
        }
        guard let duration = Self.millis(text) else {
            throw failure(windowValue.offset, .badDuration(feature: feature, field: "window", text: text))
        }
        guard let resolutionValue = fields["resolution"] else {
            guard let resolution = FeatureWindow.defaultResolutionMillis(forDurationMillis: duration) else {
                throw failure(windowValue.offset, .noDefaultResolution(feature: feature, window: text))
            }
            return FeatureWindow(durationMillis: duration, resolutionMillis: resolution)
        }
        let resolutionText = try string(resolutionValue, feature: feature, field: "resolution")
        guard let resolution = Self.millis(resolutionText) else {
            throw failure(resolutionValue.offset, .badDuration(feature: feature, field: "resolution", text: resolutionText))
        }
        return FeatureWindow(durationMillis: duration, resolutionMillis: resolution)
    }

    /// "90d" → milliseconds; nil unless a positive whole number and one of s, m, h, d, w, within ~285 years.
    static func millis(_ text: String) -> Int64? {
        guard let unit = text.last, text.first?.isASCII == true, text.first?.isNumber == true,
              let count = Int64(text.dropLast()), count > 0 else { return nil }
        let size: Int64
        switch unit {
        case "s": size = 1_000
        case "m": size = FeatureWindow.minuteMillis
        case "h": size = FeatureWindow.hourMillis
        case "d": size = FeatureWindow.dayMillis
        case "w": size = 7 * FeatureWindow.dayMillis
        default: return nil
        }
        let (total, overflow) = count.multipliedReportingOverflow(by: size)
        return overflow || total > CustomerRecord.timeLimit ? nil : total
    }

    // MARK: Filters

    func events(_ value: JSONValue, feature: String, field: String) throws(FeatureFileError) -> Set<EventKind> {
        var names: [(String, Int)] = []
        switch value.content {
        case .string(let name): names = [(name, value.offset)]
        case .array(let elements):
            for element in elements { names.append((try string(element, feature: feature, field: field), element.offset)) }
        default:
            throw failure(value.offset, .wrongType(feature: feature, field: field, expected: "an array of event names", found: value.kindName))
        }
        var kinds = Set<EventKind>()
        for (name, offset) in names {
            if name == "*" { kinds.formUnion(EventKind.allCases); continue }
            guard let kind = EventKind.allCases.first(where: { $0.wireName == name }) else {
                throw failure(offset, .unknownEvent(feature: feature, name: name))
            }
            kinds.insert(kind)
        }
        return kinds
    }

    func channels(_ value: JSONValue, feature: String) throws(FeatureFileError) -> Set<Channel> {
        guard case .array(let elements) = value.content else {
            throw failure(value.offset, .wrongType(feature: feature, field: "channels", expected: "an array of channel names", found: value.kindName))
        }
        var channels = Set<Channel>()
        for element in elements {
            let name = try string(element, feature: feature, field: "channels")
            guard let channel = Channel(wireName: name) else { throw failure(element.offset, .unknownChannel(feature: feature, name: name)) }
            channels.insert(channel)
        }
        return channels
    }

    static let textOperators = ["==", "!=", "in", "not_in"]
    static let numberOperators = ComparisonOperator.allCases.map(\.rawValue)
    static let textFields = ["category", "product_id", FeatureProperty.prefix + "<key>"]
    static let numberFields = ["amount", "score", FeatureProperty.prefix + "<key>"]
    static let properties = textFields.dropLast() + numberFields

    /// `{"category": "outdoor"}`, `{"category": ["a", "b"]}`, `{"category": {"not_in": ["a"]}}`,
    /// `{"amount": 100}`, `{"amount": {">=": 100, "<": 500}}`.
    func conditions(_ value: JSONValue, feature: String) throws(FeatureFileError) -> [PropertyCondition] {
        guard case .object(let members) = value.content else {
            throw failure(value.offset, .wrongType(feature: feature, field: "where", expected: "an object of property conditions", found: value.kindName))
        }
        var conditions: [PropertyCondition] = []
        for member in members {
            if let property = FeatureProperty.name(in: member.key) {
                try checkProperty(property, at: member.keyOffset, feature: feature)
                // A property read by name is compared as the condition is written: numbers, or text.
                if Self.isNumeric(member.value) {
                    conditions += try numberConditions(.property(property), member.value, feature: feature)
                } else {
                    conditions.append(try textCondition(.property(property), member.value, feature: feature))
                }
            } else if let field = TextField(name: member.key) {
                conditions.append(try textCondition(field, member.value, feature: feature))
            } else if let field = NumberField(name: member.key) {
                conditions += try numberConditions(field, member.value, feature: feature)
            } else {
                throw failure(member.keyOffset, .unknownProperty(feature: feature, name: member.key, allowed: Self.properties))
            }
        }
        return conditions
    }

    /// A number, or an object of comparisons whose operands are all numbers: `3`, `{">=": 2, "<": 10}`.
    static func isNumeric(_ value: JSONValue) -> Bool {
        switch value.content {
        case .number: return true
        case .object(let members):
            return !members.isEmpty && members.allSatisfy { if case .number = $0.value.content { true } else { false } }
        default: return false
        }
    }

    /// Refuses a key that cannot be read, at `offset`.
    func checkProperty(_ name: String, at offset: Int, feature: String) throws(FeatureFileError) {
        if let problem = FeatureProperty.problem(with: name) {
            throw failure(offset, .badProperty(feature: feature, name: FeatureProperty.prefix + name, problem: problem))
        }
    }

    func textCondition(_ field: TextField, _ value: JSONValue, feature: String) throws(FeatureFileError) -> PropertyCondition {
        switch value.content {
        case .string, .array:
            return .textIn(field, try strings(value, feature: feature, field: field.name))
        case .object(let members):
            guard members.count == 1, let member = members.first else {
                throw failure(value.offset, .badCondition(feature: feature, reason: "\(field.name) takes one operator of \(Self.textOperators.joined(separator: ", "))"))
            }
            let values = try strings(member.value, feature: feature, field: field.name)
            switch member.key {
            case "==", "in": return .textIn(field, values)
            case "!=", "not_in": return .textNotIn(field, values)
            default:
                throw failure(member.keyOffset, .badCondition(feature: feature, reason: "unknown operator \"\(member.key)\" for \(field.name): use \(Self.textOperators.joined(separator: ", "))"))
            }
        default:
            throw failure(value.offset, .badCondition(feature: feature, reason: "\(field.name) takes a string, an array of strings or an operator object, not \(value.kindName)"))
        }
    }

    func numberConditions(_ field: NumberField, _ value: JSONValue, feature: String) throws(FeatureFileError) -> [PropertyCondition] {
        switch value.content {
        case .number(let constant):
            return [.number(field, .equal, constant.value)]
        case .object(let members) where !members.isEmpty:
            var conditions: [PropertyCondition] = []
            for member in members {
                guard let comparison = ComparisonOperator(rawValue: member.key) else {
                    throw failure(member.keyOffset, .badCondition(feature: feature, reason: "unknown operator \"\(member.key)\" for \(field.name): use \(Self.numberOperators.joined(separator: ", "))"))
                }
                conditions.append(.number(field, comparison, try number(member.value, feature: feature, field: "where.\(field.name)")))
            }
            return conditions
        default:
            throw failure(value.offset, .badCondition(feature: feature, reason: "\(field.name) takes a number or an object of comparisons such as {\">=\": 100}"))
        }
    }

    /// The number field `of` names, or nil when the feature gives no `of`.
    func numberOf(_ fields: [String: JSONValue], feature: String) throws(FeatureFileError) -> NumberField? {
        guard let of = fields["of"] else { return nil }
        return try numberField(of, feature: feature)
    }

    func numberField(_ value: JSONValue, feature: String) throws(FeatureFileError) -> NumberField {
        let name = try string(value, feature: feature, field: "of")
        guard let field = NumberField(name: name) else {
            throw failure(value.offset, .unknownProperty(feature: feature, name: name, allowed: Self.numberFields))
        }
        if case .property(let property) = field { try checkProperty(property, at: value.offset, feature: feature) }
        return field
    }

    func textField(_ value: JSONValue, feature: String) throws(FeatureFileError) -> TextField {
        let name = try string(value, feature: feature, field: "of")
        guard let field = TextField(name: name) else {
            throw failure(value.offset, .unknownProperty(feature: feature, name: name, allowed: Self.textFields))
        }
        if case .property(let property) = field { try checkProperty(property, at: value.offset, feature: feature) }
        return field
    }

    // MARK: JSON types

    /// Refuses, as not JSON and in document order, what the parser lets through for readers that report it by
    /// field: a key written twice in one object (two `window`s are a mistake, not a choice), the tokens `NaN`,
    /// `Infinity` and `-Infinity`, and numbers too large for a Double.
    func refuseLaxJSON(_ value: JSONValue) throws(FeatureFileError) {
        switch value.content {
        case .object(let members):
            var keys = Set<String>()
            for member in members {
                guard keys.insert(member.key).inserted else {
                    throw failure(member.keyOffset, .notJSON(reason: "key \"\(member.key)\" appears twice in one object"))
                }
                try refuseLaxJSON(member.value)
            }
        case .array(let elements):
            for element in elements { try refuseLaxJSON(element) }
        case .number(let number) where !number.value.isFinite:
            let reason = switch number.literal {
            case "NaN", "Infinity": "expected a value (object, array, string, number, true, false or null)"
            case "-Infinity": "expected digits in a number"
            default: "number \(number.literal) is out of range"
            }
            throw failure(value.offset, .notJSON(reason: reason))
        case .null, .bool, .number, .string:
            break
        }
    }

    func string(_ value: JSONValue, feature: String?, field: String) throws(FeatureFileError) -> String {
        guard case .string(let text) = value.content else {
            throw failure(value.offset, .wrongType(feature: feature, field: field, expected: "a string", found: value.kindName))
        }
        return text
    }

    func number(_ value: JSONValue, feature: String, field: String) throws(FeatureFileError) -> Double {
        guard case .number(let number) = value.content else {
            throw failure(value.offset, .wrongType(feature: feature, field: field, expected: "a number", found: value.kindName))
        }
        return number.value
    }

    func strings(_ value: JSONValue, feature: String, field: String) throws(FeatureFileError) -> Set<String> {
        switch value.content {
        case .string(let text): return [text]
        case .array(let elements):
            var values = Set<String>()
            for element in elements { values.insert(try string(element, feature: feature, field: field)) }
            return values
        default:
            throw failure(value.offset, .wrongType(feature: feature, field: field, expected: "a string or an array of strings", found: value.kindName))
        }
    }
}
