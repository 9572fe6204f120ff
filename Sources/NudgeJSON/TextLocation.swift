/// A position in a document's text, for messages: the 1-based line and the 1-based column counted in
/// UTF-8 bytes. Lines end at line feeds (`\n`).
public struct TextLocation: Sendable, Equatable, CustomStringConvertible {
    /// 1-based line.
    public let line: Int
    /// 1-based column, in UTF-8 bytes from the start of the line.
    public let column: Int

    /// The location of byte `offset` of `bytes`; an offset past the end is placed just after the last byte.
    public init(offset: Int, in bytes: [UInt8]) {
        let end = max(0, min(offset, bytes.count))
        var line = 1
        var lineStart = 0
        for index in 0..<end where bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        self.line = line
        column = end - lineStart + 1
    }

    /// `line L, column C`.
    public var description: String { "line \(line), column \(column)" }
}
