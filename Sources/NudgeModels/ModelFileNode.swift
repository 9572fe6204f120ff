import NudgeJSON

/// A value of a model file with its JSON path, for validation that names the field it refuses.
struct JSONNode {
    let value: JSONValue
    /// JSON path such as `actions[2].weights`; empty for the document root.
    let path: String
    let file: String

    /// An error about this node.
    func refuse(_ problem: String) -> ModelFileError {
        ModelFileError(file: file, field: path, problem: problem)
    }

    private func wrongType(_ expected: String) -> ModelFileError {
        refuse("expected \(expected) but found \(value.kindName)")
    }

    /// This node as an object; duplicate member names are refused.
    func object() throws(ModelFileError) -> JSONObjectNode {
        guard case .object(let members) = value.content else { throw wrongType("an object") }
        var seen = Set<String>()
        for member in members where !seen.insert(member.key).inserted {
            throw JSONObjectNode.childError(path, member.key, file,
                                            "appears twice in the same object; keep only one")
        }
        return JSONObjectNode(members: members, path: path, file: file)
    }

    /// This node's elements, each with its indexed path.
    func array() throws(ModelFileError) -> [JSONNode] {
        guard case .array(let elements) = value.content else { throw wrongType("an array") }
        return elements.enumerated().map { JSONNode(value: $1, path: "\(path)[\($0)]", file: file) }
    }

    /// This node as a string.
    func string() throws(ModelFileError) -> String {
        guard case .string(let s) = value.content else { throw wrongType("a string") }
        return s
    }

    /// This node as a finite number; NaN and infinities are refused, quoting what the file wrote.
    func number() throws(ModelFileError) -> Double {
        guard case .number(let number) = value.content else { throw wrongType("a number") }
        guard number.value.isFinite else {
            throw refuse("is \(number.literal), which is not a finite number; model files hold finite numbers only "
                         + "(check the trainer for overflow, division by zero or missing values)")
        }
        return number.value
    }

    /// This node as a whole number that fits an Int.
    func integer() throws(ModelFileError) -> Int {
        let v = try number()
        guard v == v.rounded(), let i = Int(exactly: v) else {
            throw refuse("is \(v); expected a whole number")
        }
        return i
    }

    /// This node as an array of finite numbers.
    func numbers() throws(ModelFileError) -> [Double] {
        var out: [Double] = []
        for element in try array() { out.append(try element.number()) }
        return out
    }
}

/// An object node of a model file: member lookup by name, with paths for missing members.
struct JSONObjectNode {
    let members: [JSONMember]
    let path: String
    let file: String

    static func childPath(_ parent: String, _ key: String) -> String {
        parent.isEmpty ? key : "\(parent).\(key)"
    }

    static func childError(_ parent: String, _ key: String, _ file: String, _ problem: String) -> ModelFileError {
        ModelFileError(file: file, field: childPath(parent, key), problem: problem)
    }

    /// The member named `key`, or nil when it is absent or null.
    func optional(_ key: String) -> JSONNode? {
        guard let member = members.first(where: { $0.key == key }) else { return nil }
        if case .null = member.value.content { return nil }
        return JSONNode(value: member.value, path: Self.childPath(path, key), file: file)
    }

    /// Refuses a member not in `known`, naming it: a misspelt key ignored would drop what it meant (an
    /// `eligibilty` list would leave an action without its rules). `metadata` says where free-form
    /// additions belong.
    func refuseUnknownKeys(_ known: Set<String>, metadata: String) throws(ModelFileError) {
        guard let unknown = members.first(where: { !known.contains($0.key) }) else { return }
        throw Self.childError(path, unknown.key, file,
                              "is not a key here; use \(known.sorted().joined(separator: ", ")) (\(metadata))")
    }

    /// The member named `key`, or nil when it is absent; refused when it is present but null (null would
    /// read as absent, so `"eligibility":null` would drop an action's rules unnoticed).
    func optionalNonNull(_ key: String, _ hint: String) throws(ModelFileError) -> JSONNode? {
        guard let member = members.first(where: { $0.key == key }) else { return nil }
        if case .null = member.value.content { throw Self.childError(path, key, file, "is null; \(hint)") }
        return JSONNode(value: member.value, path: Self.childPath(path, key), file: file)
    }

    /// The member named `key`; when absent or null, an error naming it that ends with `hint`.
    func required(_ key: String, _ hint: String) throws(ModelFileError) -> JSONNode {
        guard let node = optional(key) else {
            throw Self.childError(path, key, file, "is missing; \(hint)")
        }
        return node
    }
}
