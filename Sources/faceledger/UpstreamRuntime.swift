import FaceLedgerServer
import Foundation
import LedgerService
import Logging
import Postgres

/// What a command-line command needs to drive upstream commands outside `serve`: a command processor
/// of its own over the database, and a gateway to the upstream. `reconcile` and `revert` use it.
struct UpstreamRuntime {
    let processor: CommandProcessor
    let client: UpstreamClient
    let gateway: UpstreamGateway

    /// Runs `body` with a runtime whose processor is ready; then finishes what the processor has
    /// queued, closes its connection and shuts the upstream client down.
    static func with<T>(
        _ settings: UpstreamSettings, conninfo: String, pool: PostgresPool, masterKeys: MasterKeys, logger: Logger,
        _ body: (UpstreamRuntime) async throws -> T
    ) async throws -> T {
        let sessions = SessionSettings.service(deadline: .seconds(30))
        let biometrics = Biometrics(masterKeys: masterKeys)
        try await pool.run { try biometrics.verify(in: $0) }
        let processor = CommandProcessor(
            conninfo: conninfo, reconnectTimeout: .seconds(5), settings: sessions,
            logger: logger, biometrics: biometrics, limits: CommandProcessorLimits(deadline: .seconds(60)))
        let client = UpstreamClient(configuration: settings.client, identity: settings.identity)
        let gateway = UpstreamGateway(
            client: client, processor: processor, pending: PendingCommands(pool: pool),
            probe: UpstreamProbe(client: client, pool: pool),
            configuration: .init(lease: settings.lease(deadline: .seconds(30)), retryPolicy: settings.retryPolicy), logger: logger)
        let runtime = UpstreamRuntime(processor: processor, client: client, gateway: gateway)
        let result: Result<T, any Error>
        do {
            result = .success(try await processor.running { try await body(runtime) })
        } catch {
            result = .failure(error)
        }
        try? await client.shutdown()
        return try result.get()
    }
}
