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
    private let connection: PostgresConnection
    private let worker: Task<Void, Never>

    static func start(_ settings: UpstreamSettings, conninfo: String, pool: PostgresPool, masterKeys: MasterKeys,
                      logger: Logger) async throws -> UpstreamRuntime {
        let sessions = SessionSettings.service(deadline: .seconds(30))
        let connection = try await PostgresConnection.connect(conninfo, reconnectTimeout: .seconds(5), settings: sessions.durableCommits)
        let biometrics = Biometrics(masterKeys: masterKeys)
        try await connection.run { try biometrics.verify(in: $0) }
        let processor = CommandProcessor(connection: connection, logger: logger, biometrics: biometrics,
                                         limits: CommandProcessorLimits(deadline: .seconds(60)))
        try await processor.warmUp()
        let worker = Task { await processor.run() }
        let client = UpstreamClient(configuration: settings.client, identity: settings.identity)
        let gateway = UpstreamGateway(
            client: client, processor: processor, pending: PendingCommands(pool: pool),
            probe: UpstreamProbe(client: client, pool: pool),
            configuration: .init(lease: settings.lease(deadline: .seconds(30)), retryPolicy: settings.retryPolicy), logger: logger)
        return UpstreamRuntime(processor: processor, client: client, gateway: gateway, connection: connection, worker: worker)
    }

    /// Finishes what the processor has queued, then closes the connections.
    func stop() async {
        processor.finish()
        await worker.value
        try? await client.shutdown()
        await connection.close()
    }
}
