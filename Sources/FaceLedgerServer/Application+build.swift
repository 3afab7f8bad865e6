import EventLog
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import LedgerDomain
import LedgerService
import Logging
import Metrics
import NIOCore
import NIOSSL
import Postgres
import ServiceLifecycle

/// Builds the HTTP application: the AWS JSON 1.1 endpoint (`addExchangeRoute`), health, readiness,
/// status and metrics (`addOperationalRoutes`), and the background services that run beside it.
///
/// The services own what they open: the pool its connections, the command processor and the
/// projector their own connections (and the projector its listener). They stop in the reverse of
/// their order, after the HTTP server: the upstream ones (reconciler, client), the projector (which
/// flushes what was appended), the command processor (which finishes what is queued), the pool, and
/// last the trace exporter, which flushes the others' last spans. The server accepts requests once the command
/// processor is ready.
///
/// - Parameter onListening: called with the bound address once requests are accepted (the port is
///   the real one when `port` is 0).
public func buildApplication(
    configuration: ServerConfiguration, conninfo: String, logger: Logger,
    onListening: @escaping @Sendable (_ scheme: String, _ host: String, _ port: Int) -> Void = { _, _, _ in }
) async throws -> some ApplicationProtocol {
    // Requests fail fast (503) while the database is away, rather than hanging on reconnects.
    let sessions = SessionSettings.service(deadline: configuration.requestDeadline)
    let pool = PostgresPool(
        conninfo: conninfo, maxConnections: 16, acquireTimeout: configuration.requestDeadline,
        reconnectTimeout: .seconds(2), settings: sessions,
        observeWait: { Timer(label: "faceledger_pool_wait_seconds").recordNanoseconds($0.nanoseconds) })
    do {
        return try await assembleApplication(
            configuration: configuration, conninfo: conninfo, pool: pool, sessions: sessions,
            logger: logger, onListening: onListening)
    } catch {
        // Nothing runs the pool's service: close what building it opened.
        await pool.close()
        throw error
    }
}

private func assembleApplication(
    configuration: ServerConfiguration, conninfo: String, pool: PostgresPool, sessions: SessionSettings, logger: Logger,
    onListening: @escaping @Sendable (_ scheme: String, _ host: String, _ port: Int) -> Void
) async throws -> some ApplicationProtocol {
    let readModels = ReadModels(pool: pool)
    guard let masterKeys = configuration.masterKeys else {
        throw ServerConfigurationError(description: "no master key: the face embeddings cannot be encrypted or read")
    }
    let biometrics = Biometrics(masterKeys: masterKeys)
    // A wrong key is refused before anything is folded, with a message that says so.
    try await pool.run { try biometrics.verify(in: $0) }
    let projector = Projector(conninfo: conninfo, logger: logger, biometrics: biometrics, settings: sessions)
    let processor = CommandProcessor(
        conninfo: conninfo, reconnectTimeout: .seconds(2), settings: sessions, logger: logger,
        biometrics: biometrics,
        limits: CommandProcessorLimits(maxPending: configuration.maxPendingCommands, deadline: configuration.requestDeadline),
        onCommitted: { projector.poke() })
    // The exporter first: services stop in reverse order, so it flushes the others' last spans.
    var services: [any Service] = (configuration.traceExport.map { [$0] } ?? []) + [pool, processor, projector]
    let pending = PendingCommands(pool: pool)
    var gateway: UpstreamGateway?
    if let upstream = configuration.upstream {
        let client = UpstreamClient(configuration: upstream.client, identity: upstream.identity)
        let upstreamGateway = UpstreamGateway(
            client: client, processor: processor, pending: pending, probe: UpstreamProbe(client: client, pool: pool),
            configuration: .init(lease: upstream.lease(deadline: configuration.requestDeadline), retryPolicy: upstream.retryPolicy),
            logger: logger)
        gateway = upstreamGateway
        services.append(UpstreamClientService(client: client))
        if let reconciler = upstream.reconciler {
            services.append(
                Reconciler(
                    gateway: upstreamGateway, configuration: reconciler, region: upstream.identity.region,
                    logger: logger))
        }
        logger.info(
            "upstream mode",
            metadata: [
                "upstream": "\(upstream.client.endpoint)", "region": "\(upstream.identity.region)",
                "credentials": "\(upstream.identity.source)",
            ])
    }
    let api = LedgerAPI(
        processor: processor, projector: projector, readModels: readModels, audit: AuditQueries(pool: pool),
        verifier: SigV4Verifier(credentials: configuration.credentials),
        tokens: PaginationTokens(secret: try await readModels.paginationSecret()), logger: logger,
        upstream: gateway,
        upstreamWait: configuration.requestDeadline * 2 + (configuration.upstream?.client.requestTimeout ?? .zero))

    let router = Router(context: LedgerRequestContext.self)
    router.add(middleware: RequestIdMiddleware())
    router.addOperationalRoutes(
        OperationalState(
            pool: pool, readModels: readModels, processor: processor, pending: pending,
            upstream: configuration.upstream != nil),
        metrics: configuration.metrics)
    router.addExchangeRoute(api: api, budget: BodyBudget(capacity: try configuration.resolvedMaxBodyBytesInFlight()), logger: logger)
    // The idle timeout also closes a connection whose request body stalls, so a silent client cannot
    // hold a connection, or its share of the byte budget, for ever.
    let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: TimeAmount(try configuration.resolvedIdleTimeout())))
    let scheme = configuration.tls == nil ? "http" : "https"
    var application = Application(
        router: router,
        server: try configuration.tls.map {
            try .tls(
                http1,
                tlsConfiguration: try serverTLS(
                    certificateChain: $0.certificateChain,
                    privateKey: $0.privateKey))
        } ?? http1,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "FaceLedger"),
        services: services,
        onServerRunning: { channel in
            onListening(scheme, configuration.host, channel.localAddress?.port ?? configuration.port)
        },
        logger: logger)
    // The write model is brought up to the log's head before the first request: what is in the log
    // then counts as committed, so reads after a restart wait for the projector to fold it.
    application.beforeServerStarts { try await processor.ready() }
    return application
}
