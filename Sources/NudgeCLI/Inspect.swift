import ArgumentParser
import FlyingFox
import Foundation
import NudgeEvents
import NudgePipeline

extension Nudge {
    /// `nudge inspect CUSTOMER`: one customer's features and state, asked of a running instance.
    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one customer's features and state, as a running `nudge run` sees them now.",
            discussion: """
                Asks the ops HTTP server of a running instance (GET /customers/{id}); the shard that owns the \
                customer answers between two events. With several instances in a group, ask the one that \
                consumes the customer's partition.
                Example: nudge inspect c-1042 --http 127.0.0.1:9464 --at 2026-11-23T10:15:00Z
                """)

        @Argument(help: "The customer id (userId, else anonymousId).")
        var customer: String

        @Option(help: ArgumentHelp("The instance's ops HTTP server (its --http-port).", valueName: "host:port"))
        var http = "127.0.0.1:9464"

        @Option(help: ArgumentHelp("Evaluate the features at this event time (ISO-8601), at or after the customer's last event. Default: the shard's newest event time.",
                                   valueName: "ISO-time"))
        var at: String?

        @Flag(help: "Print the JSON answer as it came.")
        var json = false

        func validate() throws {
            if let at, Array(at.utf8).withUnsafeBytes({ ISO8601Time.parseMillis($0) }) == nil {
                throw ValidationError("--at \(at): not an ISO-8601 time, e.g. 2026-11-23T10:15:00Z")
            }
            if customer.isEmpty { throw ValidationError("the customer id is empty") }
        }

        func run() async throws {
            let endpoint: OpsEndpoint
            do { endpoint = try OpsEndpoint(http) } catch { throw CommandFailure("\(error)") }
            let reply: (status: Int, body: Data)
            do {
                reply = try await endpoint.get(CustomerPath.target(customer: customer, at: at))
            } catch let error as OpsEndpointError {
                throw CommandFailure("\(error)")
            } catch {
                throw CommandFailure("""
                    cannot reach nudge at \(endpoint): \(error).
                    Is `nudge run` (or `nudge demo`) running there and serving HTTP? Its port is --http-port (default 9464); \
                    pass the same host:port here with --http.
                    """)
            }
            switch reply.status {
            case 200:
                if json {
                    print(String(decoding: reply.body, as: UTF8.self))
                    return
                }
                let snapshot: CustomerSnapshot
                do { snapshot = try CustomerSnapshot.jsonDecoder.decode(CustomerSnapshot.self, from: reply.body) } catch {
                    throw CommandFailure("\(endpoint) answered something that is not a customer snapshot (\(error)); is it a nudge of the same version?")
                }
                print(CustomerReport(snapshot).text)
            case 404:
                // The instance says which: never seen here, or an anonymous id linked to another instance's customer.
                if let linkedTo = Self.field("linked_to", of: reply.body) {
                    throw CommandFailure("\(endpoint): \(Self.errorMessage(reply.body)) "
                                         + "(nudge inspect \(linkedTo)\(at.map { " --at \($0)" } ?? "") --http <that instance's host:port>)")
                }
                throw CommandFailure("""
                    \(endpoint): \(Self.errorMessage(reply.body)). Check the id; with several instances, ask the one \
                    consuming the customer's partition. An anonymous id answers with the customer it was linked to \
                    while the link lasts (--idle-customer-ttl of event time unused).
                    """)
            default:
                throw CommandFailure("\(endpoint) answered \(reply.status): \(Self.errorMessage(reply.body))\(Self.hint(reply.status))")
            }
        }

        private static func errorMessage(_ body: Data) -> String {
            field("error", of: body) ?? String(decoding: body.prefix(300), as: UTF8.self)
        }

        /// A text field of a JSON error answer.
        private static func field(_ name: String, of body: Data) -> String? {
            (try? JSONDecoder().decode([String: String].self, from: body))?[name]
        }

        private static func hint(_ status: Int) -> String {
            switch status {
            case 503, 504: " (the instance is starting, stopping or overloaded: try again in a moment)"
            case 400: ""
            default: " (is this a nudge ops port? an older nudge has no /customers route)"
            }
        }
    }
}

/// Why a command could not do its work (a file refused, an instance unreachable): printed as the error,
/// without the usage text that ArgumentParser adds to a `ValidationError`, which is for options misused.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The request target of `GET /customers/{id}[?at=...]`, percent-encoded so any id survives.
enum CustomerPath {
    /// Characters left as they are in a path segment or query value: RFC 3986 unreserved.
    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// `/customers/<id>` with `at=<time>` when given.
    static func target(customer: String, at: String?) -> HTTPRequest.Target {
        let id = customer.addingPercentEncoding(withAllowedCharacters: unreserved) ?? customer
        let query = at.map { "at=" + ($0.addingPercentEncoding(withAllowedCharacters: unreserved) ?? $0) } ?? ""
        return HTTPRequest.Target(path: "/customers/\(id)", query: query)
    }
}

/// A customer snapshot as text for a terminal: a header, then `feature = value` lines.
struct CustomerReport {
    let snapshot: CustomerSnapshot

    init(_ snapshot: CustomerSnapshot) { self.snapshot = snapshot }

    var text: String {
        let s = snapshot
        var lines: [String] = []
        lines.append("customer      \(s.customerId)  (shard \(s.shard))")
        if let anonymousId = s.linkedFrom {
            lines.append("asked as      \(anonymousId), an anonymous id linked to this customer: its history and later events are theirs")
        }
        let watermark = s.shardWatermarkMillis.map { ISO8601Time.format(millis: $0) } ?? "none yet"
        lines.append("evaluated at  \(ISO8601Time.format(millis: s.evaluatedAtMillis))  (shard event time \(ISO8601Time.format(millis: s.shardEventTimeMillis)), watermark \(watermark))")
        lines.append("last event    \(ISO8601Time.format(millis: s.lastEventMillis))\(s.lastChannel.map { " on \($0)" } ?? "")")
        if s.contacts.isEmpty {
            lines.append("contacts      none remembered")
        } else {
            lines.append("contacts      \(s.contacts.count) remembered (newest last)")
            for c in s.contacts {
                lines.append("              \(ISO8601Time.format(millis: c.atMillis))  \(c.action ?? "(action no longer in the model)") by \(c.channel)")
            }
        }
        lines.append("")
        let width = max(7, s.features.map(\.name.count).max() ?? 0)
        lines.append("feature".padding(toLength: width, withPad: " ", startingAt: 0) + " = value")
        for feature in s.features {
            lines.append(feature.name.padding(toLength: width, withPad: " ", startingAt: 0) + " = " + Self.format(feature.value))
        }
        return lines.joined(separator: "\n")
    }

    /// Whole numbers without a fraction; others in Swift's shortest exact form.
    static func format(_ value: Double) -> String {
        if value.isFinite, value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
