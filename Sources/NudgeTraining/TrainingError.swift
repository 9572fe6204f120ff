import NudgeModels

/// Why a dataset could not be built or read, or a model could not be trained or written. Each case names
/// the file, option or field at fault and says what to do about it.
public enum TrainingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file could not be read or written.
    case file(path: String, problem: String)
    /// A command-line value could not be understood (`--cutoff-every 7x`).
    case option(name: String, value: String, expected: String)
    /// A CSV file is malformed: `line` is 1-based (the header is line 1), `column` is a header name or "".
    case csv(path: String, line: Int, column: String, problem: String)
    /// The action catalog is malformed.
    case catalog(path: String, field: String, problem: String)
    /// The data cannot support a fit (no rows, a single class, …).
    case data(problem: String)
    /// A model file the trainer wrote, or one given to evaluate, was refused by the service's loader.
    case model(ModelFileError)

    /// What went wrong and what to do, naming the file, option or field.
    public var description: String {
        switch self {
        case .file(let path, let problem):
            return "\(path): \(problem)"
        case .option(let name, let value, let expected):
            return "--\(name) '\(value)' is not valid; expected \(expected)"
        case .csv(let path, let line, let column, let problem):
            return column.isEmpty ? "\(path):\(line): \(problem)" : "\(path):\(line): column \(column): \(problem)"
        case .catalog(let path, let field, let problem):
            return field.isEmpty ? "\(path): \(problem)" : "\(path): \(field): \(problem)"
        case .data(let problem):
            return problem
        case .model(let error):
            return "model file refused: \(error)"
        }
    }
}
