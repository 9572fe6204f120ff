/// Why a model file was refused: which file, which field (a JSON path such as
/// `actions[2].weights[4]`, empty when the whole document is at fault) and what is wrong,
/// phrased so that a data scientist knows what to change. The running model stays in place.
public struct ModelFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file name or path the caller passed to the loader.
    public var file: String
    /// JSON path of the offending field, e.g. `standardize.scale[3]`; empty for document-level problems.
    public var field: String
    /// What is wrong and what to do about it.
    public var problem: String

    /// Creates an error for `field` of `file`.
    public init(file: String, field: String, problem: String) {
        self.file = file
        self.field = field
        self.problem = problem
    }

    /// `file: field: problem`, or `file: problem` when no single field is at fault.
    public var description: String {
        field.isEmpty ? "\(file): \(problem)" : "\(file): \(field): \(problem)"
    }
}
