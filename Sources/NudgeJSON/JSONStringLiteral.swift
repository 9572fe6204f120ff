extension JSONValue {
    /// `text` as a JSON string literal, quotes included: `"`, `\` and control characters escaped (`\n`, `\r`,
    /// `\t` by name, others as `\u00XX`), everything else as it is. For the JSON the project writes by hand:
    /// model files, datasets' definitions, feature signatures.
    public static func stringLiteral(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
