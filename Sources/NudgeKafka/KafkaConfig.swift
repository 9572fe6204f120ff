import CRdKafka
import Foundation

/// librdkafka properties, passed through unchanged so that any client setting (SASL, SSL,
/// compression, batching...) works without code changes, as with kcat's `-X key=value`.
public struct KafkaConfig: Sendable, Equatable {
    /// Properties in the order they were set; later settings of the same key win.
    public private(set) var properties: [(key: String, value: String)] = []

    /// An empty configuration: librdkafka's defaults apply.
    public init() {}

    /// A configuration from `key=value` pairs.
    public init(_ pairs: [String: String]) {
        for (k, v) in pairs.sorted(by: { $0.key < $1.key }) { set(k, v) }
    }

    /// Sets (or replaces) one property.
    public mutating func set(_ key: String, _ value: String) {
        properties.removeAll { $0.key == key }
        properties.append((key, value))
    }

    /// Sets a property only if it was not set already (defaults that a user's file or `-X` may override).
    public mutating func setDefault(_ key: String, _ value: String) {
        if self[key] == nil { set(key, value) }
    }

    /// The value of a property, if set.
    public subscript(key: String) -> String? {
        properties.last { $0.key == key }?.value
    }

    /// Merges another configuration over this one.
    public mutating func merge(_ other: KafkaConfig) {
        for (k, v) in other.properties { set(k, v) }
    }

    /// Parses one `key=value` argument (as given to `-X`).
    public static func parseAssignment(_ text: String) throws(KafkaError) -> (String, String) {
        guard let eq = text.firstIndex(of: "=") else {
            throw KafkaError("'\(text)' is not key=value (example: -X security.protocol=SASL_SSL)")
        }
        let key = text[..<eq].trimmingCharacters(in: .whitespaces)
        let value = text[text.index(after: eq)...].trimmingCharacters(in: .whitespaces)
        guard !key.isEmpty else { throw KafkaError("'\(text)' has an empty key") }
        return (key, value)
    }

    /// Loads a Java-style properties file (`key=value` lines, `#` comments), as kcat's `-F`.
    public static func load(file path: String) throws(KafkaError) -> KafkaConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw KafkaError("cannot read Kafka config file \(path): \(error.localizedDescription)")
        }
        var config = KafkaConfig()
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            do {
                let (k, v) = try parseAssignment(line)
                config.set(k, v)
            } catch {
                throw KafkaError("\(path):\(number + 1): \(error.message)")
            }
        }
        return config
    }

    /// Builds librdkafka's configuration object; every rejected property is reported by name.
    func makeNative() throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError("rd_kafka_conf_new failed") }
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in properties {
            let res = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            if res != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let why = String(decoding: errstr.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw KafkaError("Kafka property \(key)=\(value) refused: \(why)")
            }
        }
        return conf
    }

    public static func == (a: KafkaConfig, b: KafkaConfig) -> Bool {
        a.properties.map { "\($0.key)=\($0.value)" } == b.properties.map { "\($0.key)=\($0.value)" }
    }
}
