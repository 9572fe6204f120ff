#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FlyingFox
import FlyingSocks
import Foundation

/// Where a running `nudge run` serves its ops HTTP routes (`--http-port`), and a plain GET against it.
///
/// FlyingFox's client rather than URLSession: on Linux URLSession is FoundationNetworking, which would tie
/// the statically linked binary to libcurl at run time.
struct OpsEndpoint: CustomStringConvertible {
    /// Host name or address.
    let host: String
    /// TCP port.
    let port: UInt16

    /// Parses `host:port`, `[v6-address]:port`, or a bare port (localhost).
    init(_ text: String) throws(OpsEndpointError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var host = "127.0.0.1"
        var portText = trimmed
        if trimmed.hasPrefix("["), let close = trimmed.firstIndex(of: "]") {
            host = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
            portText = String(trimmed[close...].dropFirst().drop { $0 == ":" })
        } else if let colon = trimmed.lastIndex(of: ":") {
            host = String(trimmed[..<colon])
            portText = String(trimmed[trimmed.index(after: colon)...])
        }
        guard !host.isEmpty, let port = UInt16(portText), port > 0 else { throw .badAddress(text) }
        self.host = host
        self.port = port
    }

    /// `host:port` as given.
    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// GETs `target` (already percent-encoded) and returns the status code and body.
    func get(_ target: HTTPRequest.Target) async throws -> (status: Int, body: Data) {
        let request = HTTPRequest(method: .GET, version: .http11, target: target,
                                  headers: HTTPHeaders([.host: description, .connection: "close"]), body: HTTPBodySequence(data: Data()))
        var client = HTTPClient()
        let response: HTTPResponse
        switch try resolve() {
        case .ip4(let address): response = try await client.sendHTTPRequest(request, to: address)
        case .ip6(let address): response = try await client.sendHTTPRequest(request, to: address)
        }
        return (response.statusCode.code, try await response.bodyData)
    }

    private enum Address {
        case ip4(sockaddr_in)
        case ip6(sockaddr_in6)
    }

    /// The host's first IPv4 address, else its first IPv6 one.
    private func resolve() throws(OpsEndpointError) -> Address {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else { throw .unresolved(host, String(cString: gai_strerror(status))) }
        defer { freeaddrinfo(list) }
        var ip6: sockaddr_in6?
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry, let address = current.pointee.ai_addr {
            switch current.pointee.ai_family {
            case AF_INET: return .ip4(UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in.self))
            case AF_INET6 where ip6 == nil: ip6 = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in6.self)
            default: break
            }
            entry = current.pointee.ai_next
        }
        guard let ip6 else { throw .unresolved(host, "no IPv4 or IPv6 address") }
        return .ip6(ip6)
    }
}

/// Why an ops endpoint cannot be used.
enum OpsEndpointError: Error, CustomStringConvertible {
    /// Not `host:port`.
    case badAddress(String)
    /// The host name does not resolve.
    case unresolved(String, String)

    var description: String {
        switch self {
        case .badAddress(let text): "--http \(text): expected host:port, e.g. 127.0.0.1:9464"
        case .unresolved(let host, let reason): "cannot resolve \(host): \(reason)"
        }
    }
}
