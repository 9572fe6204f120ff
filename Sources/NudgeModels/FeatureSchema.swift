/// The layout of the feature vector the service computes: feature names, in vector order.
/// Models bind their feature names to positions in this layout once, at load, so that
/// scoring is plain indexing.
public struct FeatureSchema: Sendable, Equatable {
    /// Feature names in vector order.
    public let names: [String]
    /// What each feature computes (``definition(of:)``), in vector order; nil when not known.
    public let definitions: [String]?
    /// Name to position; when a name repeats, its first position wins.
    private let positions: [String: Int]

    /// Creates a schema from names in vector order and, when known, what each computes (the feature
    /// definitions' signatures): a model that recorded another definition for a name is then refused.
    public init(names: [String], definitions: [String]? = nil) {
        self.names = names
        self.definitions = definitions?.count == names.count ? definitions : nil
        var positions: [String: Int] = [:]
        for (i, name) in names.enumerated() where positions[name] == nil {
            positions[name] = i
        }
        self.positions = positions
    }

    /// The number of features in a vector of this layout.
    public var count: Int { names.count }

    /// The position of `name` in the vector, or nil when the schema does not define it.
    public func index(of name: String) -> Int? { positions[name] }

    /// What the feature called `name` computes, when the schema knows.
    public func definition(of name: String) -> String? { index(of: name).flatMap { definitions?[$0] } }

    /// Two schemas are equal when they lay out the same names in the same order.
    public static func == (lhs: FeatureSchema, rhs: FeatureSchema) -> Bool { lhs.names == rhs.names }
}
