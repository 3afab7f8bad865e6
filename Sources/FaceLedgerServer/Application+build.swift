import Hummingbird
import Logging
import NIOCore
import Postgres

/// What `faceledger serve` needs to run.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

/// Builds the HTTP application: the routes and the services that run beside them.
///
/// - Parameter onListening: called with the bound address once requests are accepted (the port is
///   the real one when `port` is 0).
public func buildApplication(
    configuration: ServerConfiguration, pool: PostgresPool, logger: Logger,
    onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }
) -> some ApplicationProtocol {
    let router = Router()
    router.get("/health") { _, _ in HTTPResponse.Status.ok }
    router.get("/ready") { _, _ -> HTTPResponse.Status in
        // Ready when the database answers.
        do {
            try await pool.query("SELECT 1")
            return .ok
        } catch {
            return .serviceUnavailable
        }
    }
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "FaceLedger"),
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            onListening(configuration.host, port)
        },
        logger: logger)
}
