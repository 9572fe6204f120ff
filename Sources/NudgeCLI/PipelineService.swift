import FlyingFox
import Foundation
import Logging
import NudgePipeline
import ServiceLifecycle

/// Runs the pipeline under swift-service-lifecycle: started with the group, stopped gracefully on
/// SIGINT/SIGTERM (stop consuming, drain, flush, commit) before the process exits.
struct PipelineService: Service {
    let pipeline: Pipeline

    func run() async throws {
        try pipeline.start()
        // Suspends until the group shuts down gracefully (a signal, or another service finishing).
        try? await gracefulShutdown()
        await runBlocking { pipeline.stop() }
    }
}

/// Runs a blocking call on a thread of its own, off the cooperative pool.
func runBlocking(_ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        let thread = Thread {
            body()
            done.resume()
        }
        thread.start()
    }
}

/// Serves `/metrics` (Prometheus text), `/health` (503 once a ``PipelineFault`` needs a restart), `/ready` (consuming) and
/// `/customers/{id}` (one customer's features and state, see ``CustomerRoute``) over HTTP.
struct OpsHTTPService: Service {
    let port: UInt16
    let pipeline: Pipeline
    let logger: Logger

    func run() async throws {
        let server = HTTPServer(port: port, logger: .disabled)
        let pipeline = self.pipeline
        await server.appendRoute("GET /metrics") { _ in
            HTTPResponse(statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                         body: Data(pipeline.prometheusText().utf8))
        }
        await server.appendRoute("GET /health") { _ in
            guard let fault = pipeline.fault else { return HTTPResponse(statusCode: .ok, body: Data("ok\n".utf8)) }
            return HTTPResponse(statusCode: .serviceUnavailable, body: Data("unhealthy: \(fault)\n".utf8))
        }
        await server.appendRoute("GET /ready") { _ in
            pipeline.isReady ? HTTPResponse(statusCode: .ok, body: Data("ready\n".utf8))
                : HTTPResponse(statusCode: .serviceUnavailable, body: Data("not ready: no partitions assigned yet\n".utf8))
        }
        await server.appendRoute(HTTPRoute(CustomerRoute.pattern), to: CustomerRoute(pipeline: pipeline))
        logger.info("metrics on http://0.0.0.0:\(port)/metrics, customers on http://0.0.0.0:\(port)/customers/{id}")
        try await withGracefulShutdownHandler {
            do { try await server.run() } catch where !(error is CancellationError) && !Task.isShuttingDownGracefully {
                // Thrown, not logged: the group cancels the other services (the pipeline's stops as on a signal:
                // drain, flush, commit) and the command ends with this.
                throw OpsHTTPFailure(port: port, cause: error)
            } catch {}
        } onGracefulShutdown: {
            Task { await server.stop(timeout: 1) }
        }
    }
}

/// The ops HTTP server could not serve its port (most often: another process holds it).
struct OpsHTTPFailure: Error, CustomStringConvertible {
    let port: UInt16
    let cause: any Error

    var description: String {
        "the ops HTTP server cannot serve port \(port) (\(cause)): is the port free? Choose another with --http-port, or 0 to turn it off"
    }
}
