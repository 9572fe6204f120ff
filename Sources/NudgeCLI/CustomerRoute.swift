import FlyingFox
import Foundation
import NudgeEvents
import NudgePipeline

/// `GET /customers/{id}[?at=ISO-time]`: the customer's snapshot as JSON (``CustomerSnapshot``), asked of the
/// shard that owns them (an anonymous id linked to a customer answers with that customer's); 404 when this
/// instance has not seen the customer, or the id is linked to a customer another instance holds (`linked_to`
/// names them) or of whom this one holds nothing; 400 for a time before their last event.
struct CustomerRoute: HTTPHandler {
    /// The route pattern to register the handler under.
    static let pattern = "GET /customers/:id"

    let pipeline: Pipeline

    func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
        // The path arrives percent-encoded: ids may hold any character.
        guard let raw = request.routeParameters["id"], let customer = raw.removingPercentEncoding, !customer.isEmpty else {
            return Self.error(.badRequest, "no customer id: GET /customers/{id}")
        }
        var atMillis: Int64?
        if let at = request.query["at"] {
            guard let millis = Array(at.utf8).withUnsafeBytes({ ISO8601Time.parseMillis($0) }) else {
                return Self.error(.badRequest, "at=\(at) is not an ISO-8601 time, e.g. 2026-11-23T10:15:02Z")
            }
            atMillis = millis
        }
        let snapshot: CustomerSnapshot?
        do throws(InspectionError) {
            snapshot = try await pipeline.inspect(customer: customer, atMillis: atMillis)
        } catch {
            switch error {
            case .timedOut: return Self.error(.gatewayTimeout, "\(customer): the owning shard did not answer in time; try again")
            case .linkedElsewhere(_, let user): return Self.error(.notFound, "\(error)", linkedElsewhere: user)
            case .linkedToUnknown: return Self.error(.notFound, "\(error)")
            case .notRunning, .busy: return Self.error(.serviceUnavailable, "\(customer): \(error)")
            }
        }
        guard let snapshot else {
            return Self.error(.notFound, "customer \(customer) is not in this instance's store")
        }
        // The rings keep buckets from the customer's last event on: an earlier answer would be made up.
        if let atMillis, atMillis < snapshot.lastEventMillis {
            return Self.error(.badRequest, """
                at=\(ISO8601Time.format(millis: atMillis)) is before \(snapshot.customerId)'s last event \
                (\(ISO8601Time.format(millis: snapshot.lastEventMillis))): the store keeps windows from there on; \
                ask at or after it, or replay history with `nudge dataset` for features at an earlier time
                """)
        }
        do {
            return HTTPResponse(statusCode: .ok, headers: [.contentType: "application/json"],
                                body: try CustomerSnapshot.jsonEncoder.encode(snapshot))
        } catch {
            return Self.error(.internalServerError, "\(customer): snapshot not encodable: \(error)")
        }
    }

    /// `{"error": message}` with `status`, and `"linked_to"` naming the customer an anonymous id is linked to
    /// when another instance holds them.
    private static func error(_ status: HTTPStatusCode, _ message: String, linkedElsewhere: String? = nil) -> HTTPResponse {
        var fields = ["error": message]
        fields["linked_to"] = linkedElsewhere
        let body = (try? JSONEncoder().encode(fields)) ?? Data()
        return HTTPResponse(statusCode: status, headers: [.contentType: "application/json"], body: body)
    }
}

extension CustomerSnapshot {
    /// The encoder of the wire form. Feature values are finite by construction; should one not be, it is
    /// written as a string rather than failing the whole answer.
    static var jsonEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]  // stable output for people and diffs
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    /// The decoder matching ``jsonEncoder``.
    static var jsonDecoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}
