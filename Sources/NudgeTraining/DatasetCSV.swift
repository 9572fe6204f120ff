import Foundation
import NudgeFeatures

/// The CSV files `nudge dataset` writes and `nudge train` / `nudge evaluate` / the Python package read.
///
/// RFC 4180: comma-separated, a header line, fields holding a comma, a quote or a line break are quoted
/// (quotes doubled). Numbers are written in Swift's shortest round-trip form, so a reader gets back the
/// exact doubles. Times are ISO-8601 UTC with milliseconds (`2026-10-21T00:00:00.000Z`); booleans are 0/1.
///
/// `dataset.csv`: `customer_id,cutoff,<features…>,churn`.
/// `offers.csv`: `customer_id,delivered_at,recommendation_id,action,channel,<features…>,viewed,dismissed,accepted`.
public enum DatasetCSV {
    /// Columns of a churn dataset that are not features.
    public static let churnColumns = (id: "customer_id", time: "cutoff", label: "churn")
    /// Columns of an offers dataset that are not features.
    public static let offerColumns = (id: "customer_id", time: "delivered_at", recommendation: "recommendation_id",
                                      action: "action", channel: "channel", viewed: "viewed", dismissed: "dismissed",
                                      label: "accepted")

    /// The churn dataset as CSV text.
    public static func churnCSV(_ rows: [ChurnRow], featureNames: [String]) -> String {
        var out = header([churnColumns.id, churnColumns.time] + featureNames + [churnColumns.label])
        out.reserveCapacity(rows.count * (40 + featureNames.count * 8))
        for row in rows {
            out += field(row.customerId)
            out += ","
            out += DurationText.format(millis: row.cutoffMillis)
            for value in row.features { out += ","; out += number(value) }
            out += row.churned ? ",1\n" : ",0\n"
        }
        return out
    }

    /// The offers dataset as CSV text.
    public static func offersCSV(_ rows: [OfferRow], featureNames: [String]) -> String {
        let c = offerColumns
        var out = header([c.id, c.time, c.recommendation, c.action, c.channel] + featureNames + [c.viewed, c.dismissed, c.label])
        out.reserveCapacity(rows.count * (90 + featureNames.count * 8))
        for row in rows {
            out += [field(row.customerId), DurationText.format(millis: row.deliveredMillis), field(row.recommendationId),
                    field(row.action), field(row.channel)].joined(separator: ",")
            for value in row.features { out += ","; out += number(value) }
            out += row.viewed ? ",1" : ",0"
            out += row.dismissed ? ",1" : ",0"
            out += row.accepted ? ",1\n" : ",0\n"
        }
        return out
    }

    /// Writes `text` to `path` (replacing it).
    public static func write(_ text: String, to path: String) throws(TrainingError) {
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        } catch {
            throw .file(path: path, problem: "cannot write (\(error.localizedDescription)); check the directory exists and is writable")
        }
    }

    /// A number as written: shortest round-trip decimal; NaN and infinities (never produced by the standard
    /// features) as `nan`, `inf`, `-inf`, which Python's float() also reads.
    public static func number(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    private static func header(_ names: [String]) -> String { names.map(field).joined(separator: ",") + "\n" }

    /// A field, quoted when it needs to be.
    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: Reading

    /// Splits CSV text into records of fields (quoted fields unquoted, `\r\n` or `\n` line ends). Throws on an
    /// unterminated quote.
    public static func records(_ text: String, path: String) throws(TrainingError) -> [[String]] {
        let bytes = Array(text.utf8)
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), newline = UInt8(ascii: "\n"), carriage = UInt8(ascii: "\r")
        var records: [[String]] = []
        var record: [String] = []
        var line = 1
        var i = 0
        let n = bytes.count
        guard n > 0 else { return [] }
        while true {
            // One field starting at i (empty when i is at a comma, a line end or the end).
            if i < n && bytes[i] == quote {
                var field: [UInt8] = []
                var j = i + 1
                var closed = false
                while j < n {
                    if bytes[j] == quote {
                        if j + 1 < n && bytes[j + 1] == quote {
                            field.append(quote)
                            j += 2
                            continue
                        }
                        closed = true
                        j += 1
                        break
                    }
                    if bytes[j] == newline { line += 1 }
                    field.append(bytes[j])
                    j += 1
                }
                guard closed else {
                    throw .csv(path: path, line: line, column: "", problem: "a quoted field is not closed; check the file is complete")
                }
                record.append(String(decoding: field, as: UTF8.self))
                i = j
                if i < n && bytes[i] == carriage { i += 1 }
            } else {
                var j = i
                while j < n && bytes[j] != comma && bytes[j] != newline { j += 1 }
                var end = j
                if end > i && bytes[end - 1] == carriage { end -= 1 }
                record.append(String(decoding: bytes[i..<end], as: UTF8.self))
                i = j
            }
            if i < n && bytes[i] == comma {
                i += 1
                continue
            }
            records.append(record)
            record = []
            i += 1  // the line end
            line += 1
            if i >= n { break }
        }
        return records
    }
}

/// A labelled table read from a dataset CSV: the design matrix the trainer fits and evaluates on.
public struct LabeledTable: Sendable {
    /// Feature names, in column order.
    public var featureNames: [String]
    /// Feature values, row-major (`count × featureNames.count`).
    public var values: [Double]
    /// Labels, 0 or 1.
    public var labels: [Double]
    /// Row times (cutoff or delivery), Unix milliseconds.
    public var times: [Int64]
    /// Row group: the action of an offer row; empty for churn rows.
    public var groups: [String]
    /// Row ids (customer ids).
    public var ids: [String]

    /// Number of rows.
    public var count: Int { labels.count }

    /// Creates a table from its columns.
    public init(featureNames: [String], values: [Double], labels: [Double], times: [Int64], groups: [String], ids: [String]) {
        self.featureNames = featureNames
        self.values = values
        self.labels = labels
        self.times = times
        self.groups = groups
        self.ids = ids
    }

    /// Which file a table is read from.
    public enum Kind: Sendable {
        /// `dataset.csv`: label `churn`, time `cutoff`.
        case churn
        /// `offers.csv`: label `accepted`, time `delivered_at`, group `action`.
        case offers
    }

    /// Reads a dataset CSV. Features are every column not in ``FeatureSet/reservedNames``, unless `features`
    /// names a subset (in the order wanted).
    public static func read(path: String, kind: Kind, features: [String]? = nil) throws(TrainingError) -> LabeledTable {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .file(path: path, problem: "cannot read the dataset (\(error.localizedDescription)); run `nudge dataset` first")
        }
        return try parse(text, path: path, kind: kind, features: features)
    }

    /// Parses dataset CSV text (see ``read(path:kind:features:)``).
    public static func parse(_ text: String, path: String, kind: Kind, features: [String]? = nil) throws(TrainingError) -> LabeledTable {
        let records = try DatasetCSV.records(text, path: path)
        guard let header = records.first, !header.isEmpty else {
            throw .csv(path: path, line: 1, column: "", problem: "the file is empty; expected a header line")
        }
        func column(_ name: String) throws(TrainingError) -> Int {
            guard let index = header.firstIndex(of: name) else {
                let file = kind == .churn ? "a churn dataset (nudge dataset --out)" : "an offers dataset (nudge dataset --offers-out)"
                throw .csv(path: path, line: 1, column: name, problem: "is missing from the header; is this \(file)?")
            }
            return index
        }
        let labelColumn = try column(kind == .churn ? DatasetCSV.churnColumns.label : DatasetCSV.offerColumns.label)
        let timeColumn = try column(kind == .churn ? DatasetCSV.churnColumns.time : DatasetCSV.offerColumns.time)
        let idColumn = try column(DatasetCSV.churnColumns.id)
        let groupColumn = kind == .offers ? try column(DatasetCSV.offerColumns.action) : nil
        let names = features ?? header.filter { !FeatureSet.reservedNames.contains($0) }
        var featureColumns: [Int] = []
        for name in names {
            // A name asked for (`--features`) that the file lacks is the option's mistake, not the file's.
            guard features == nil || header.contains(name) else {
                let columns = header.filter { !FeatureSet.reservedNames.contains($0) }
                throw .option(name: "features", value: name, expected: "a feature column of \(path): \(columns.joined(separator: ", "))")
            }
            featureColumns.append(try column(name))
        }
        guard !featureColumns.isEmpty else {
            throw .csv(path: path, line: 1, column: "", problem: "has no feature columns")
        }

        var table = LabeledTable(featureNames: names, values: [], labels: [], times: [], groups: [], ids: [])
        table.values.reserveCapacity((records.count - 1) * names.count)
        for (offset, record) in records.dropFirst().enumerated() {
            let line = offset + 2
            if record.count == 1 && record[0].isEmpty { continue }
            guard record.count == header.count else {
                throw .csv(path: path, line: line, column: "",
                           problem: "has \(record.count) fields but the header has \(header.count); check the file is not truncated")
            }
            for (name, index) in zip(names, featureColumns) {
                guard let value = Double(record[index]) else {
                    throw .csv(path: path, line: line, column: name, problem: "'\(record[index])' is not a number")
                }
                table.values.append(value)
            }
            switch record[labelColumn] {
            case "1": table.labels.append(1)
            case "0": table.labels.append(0)
            default:
                throw .csv(path: path, line: line, column: header[labelColumn], problem: "'\(record[labelColumn])' is not 0 or 1")
            }
            guard let time = DurationText.parseInstant(record[timeColumn]) else {
                throw .csv(path: path, line: line, column: header[timeColumn],
                           problem: "'\(record[timeColumn])' is not an ISO-8601 time such as 2026-10-21T00:00:00.000Z")
            }
            table.times.append(time)
            table.ids.append(record[idColumn])
            table.groups.append(groupColumn.map { record[$0] } ?? "")
        }
        return table
    }

    /// Row `i`'s feature values.
    public func row(_ i: Int) -> ArraySlice<Double> {
        let width = featureNames.count
        return values[(i * width)..<((i + 1) * width)]
    }

    /// The rows at `indices`, in that order.
    public func subset(_ indices: [Int]) -> LabeledTable {
        var values: [Double] = []
        values.reserveCapacity(indices.count * featureNames.count)
        for i in indices { values.append(contentsOf: row(i)) }
        return LabeledTable(featureNames: featureNames, values: values, labels: indices.map { labels[$0] },
                            times: indices.map { times[$0] }, groups: indices.map { groups[$0] }, ids: indices.map { ids[$0] })
    }
}
