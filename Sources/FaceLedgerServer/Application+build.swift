import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import LedgerDomain
import LedgerService
import Logging
import Metrics
import NIOCore
import Postgres
import ServiceLifecycle
import Tracing

/// Builds the HTTP application: the AWS JSON 1.1 endpoint, health and readiness, and the background
/// services (command processor, projector) that run beside it.
///
/// - Parameter onListening: called with the bound address once requests are accepted (the port is
///   the real one when `port` is 0).
public func buildApplication(
    configuration: ServerConfiguration, conninfo: String, logger: Logger,
    onListening: @escaping @Sendable (_ scheme: String, _ host: String, _ port: Int) -> Void = { _, _, _ in }
) async throws -> some ApplicationProtocol {
    // Requests fail fast (503) while the database is away, rather than hanging on reconnects.
    let sessions = SessionSettings.service(deadline: configuration.requestDeadline)
    let pool = PostgresPool(conninfo: conninfo, maxConnections: 16, acquireTimeout: configuration.requestDeadline,
                            reconnectTimeout: .seconds(2), settings: sessions,
                            observeWait: { Timer(label: "faceledger_pool_wait_seconds").recordNanoseconds($0.nanoseconds) })
    let readModels = ReadModels(pool: pool)
    guard let masterKeys = configuration.masterKeys else {
        throw ServerConfigurationError(description: "no master key: the face embeddings cannot be encrypted or read")
    }
    let biometrics = Biometrics(masterKeys: masterKeys)
    // A wrong key is refused before anything is folded, with a message that says so.
    try await pool.run { try biometrics.verify(in: $0) }
    let projector = Projector(conninfo: conninfo, logger: logger, biometrics: biometrics, settings: sessions)
    let processor = CommandProcessor(
        connection: try await PostgresConnection.connect(conninfo, reconnectTimeout: .seconds(2), settings: sessions.durableCommits),
        logger: logger, biometrics: biometrics,
        limits: CommandProcessorLimits(maxPending: configuration.maxPendingCommands, deadline: configuration.requestDeadline),
        onCommitted: { projector.poke() })
    try await processor.warmUp()
    // The exporter first: services stop in reverse order, so it flushes the others' last spans.
    var services: [any Service] = (configuration.traceExport.map { [$0] } ?? []) + [CommandProcessorService(processor: processor), projector]
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
            services.append(Reconciler(gateway: upstreamGateway, configuration: reconciler, region: upstream.identity.region,
                                       logger: logger))
        }
        logger.info("upstream mode", metadata: ["upstream": "\(upstream.client.endpoint)", "region": "\(upstream.identity.region)",
                                                "credentials": "\(upstream.identity.source)"])
    }
    let api = LedgerAPI(processor: processor, projector: projector, readModels: readModels, audit: AuditQueries(pool: pool),
                        verifier: SigV4Verifier(credentials: configuration.credentials),
                        tokens: PaginationTokens(secret: try await readModels.paginationSecret()), logger: logger,
                        upstream: gateway,
                        upstreamWait: configuration.requestDeadline * 2 + (configuration.upstream?.client.requestTimeout ?? .zero))

    let router = Router(context: LedgerRequestContext.self)
    router.add(middleware: RequestIdMiddleware())
    // Alive while the process runs, unless the embedded PostgreSQL it runs is gone: nothing in this
    // process starts it again (a new `serve` does).
    router.get("/health") { _, _ in DatabaseTarget.servedClusterIsDown() ? HTTPResponse.Status.serviceUnavailable : .ok }
    // Ready when the database answers now.
    // Ready: the database answers, its schema is this binary's, and the projector is not far behind
    // (reads would answer stale). The body says why not, for an operator's curl.
    router.get("/ready") { _, _ -> Response in
        func answer(_ status: HTTPResponse.Status, _ reason: String) -> Response {
            Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: reason + "\n")))
        }
        if DatabaseTarget.servedClusterIsDown() { return answer(.serviceUnavailable, "the embedded PostgreSQL is not running") }
        do {
            let schema = try await pool.query("SELECT coalesce(max(version), 0) FROM schema_migrations")[0].decode(Int.self, at: 0)
            if let latest = Migrations.all.last?.version, schema < latest {
                return answer(.serviceUnavailable, "migrations are pending: the database is at \(schema), this server needs \(latest)")
            }
            let lag = try await readModels.projectorLag()
            if lag.seconds > ReadinessLimits.projectorLagSeconds {
                return answer(.serviceUnavailable, "the projector is \(lag.events) events (\(Int(lag.seconds)) s) behind")
            }
            return answer(.ok, "ready")
        } catch {
            return answer(.serviceUnavailable, "the database does not answer")
        }
    }
    // Operational state: how far the projector trails the log.
    router.get("/status") { _, _ -> Response in
        do {
            let lag = try await readModels.projectorLag()
            let body = JSONValue.object(["projector": .object([
                "checkpoint": .integer(Int(lag.checkpoint)), "head": .integer(Int(lag.head)),
                "lag_events": .integer(Int(lag.events)), "lag_seconds": .number(lag.seconds),
            ]), "write_side": .object([
                "position": .integer(Int(processor.committedPosition)),
                "queued": .integer(processor.queuedCount),
            ])])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: body.data)))
        } catch {
            return Response(status: .serviceUnavailable)
        }
    }
    let budget = BodyBudget(capacity: try configuration.resolvedMaxBodyBytesInFlight())
    router.post("/") { request, context in
        let started = ContinuousClock.now
        let target = request.headers[HTTPField.Name("X-Amz-Target")!]
        // One server span per exchange, named by its operation, continuing the client's trace when it
        // sent W3C trace context (a no-op unless --otlp-endpoint is given).
        var parent = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(request.headers.map { (name: $0.name.canonicalName, value: $0.value) },
                                                 into: &parent, using: HeaderExtractor())
        let operation = (try? Operation.from(target: target))?.rawValue ?? "unknown"
        return await withSpan(operation, context: parent, ofKind: .server) { span in
            var principal: String?
            let response = await respond(to: request, context: context, api: api, budget: budget, principal: &principal)
            let exchange = ExchangeObservation(target: target, response: response, duration: ContinuousClock.now - started)
            exchange.record()
            exchange.log(to: logger, principal: principal, source: context.remoteAddress?.ipAddress)
            span.attributes["http.response.status_code"] = Int(response.status.code)
            if exchange.code != "OK" {
                span.attributes["aws.error_code"] = exchange.code
                if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
            }
            return response
        }
    }
    if let metrics = configuration.metrics {
        router.get("/metrics") { _, _ -> Response in
            // Gauges that are cheaper to read when scraped than to keep up to date.
            Gauge(label: "faceledger_commands_queued").record(processor.queuedCount)
            if let lag = try? await readModels.projectorLag() {
                Gauge(label: "faceledger_projector_lag_events").record(lag.events)
                Gauge(label: "faceledger_projector_lag_seconds").record(lag.seconds)
            }
            let usage = pool.usage
            Gauge(label: "faceledger_pool_connections_open").record(usage.open)
            Gauge(label: "faceledger_pool_connections_in_use").record(usage.inUse)
            Gauge(label: "faceledger_pool_waiting").record(usage.waiting)
            if configuration.upstream != nil, let backlog = try? await pending.count() {
                Gauge(label: "faceledger_reconciler_backlog").record(backlog)
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
        }
    }
    // The idle timeout also closes a connection whose request body stalls, so a silent client cannot
    // hold a connection, or its share of the byte budget, for ever.
    let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: TimeAmount(try configuration.resolvedIdleTimeout())))
    let scheme = configuration.tls == nil ? "http" : "https"
    return Application(
        router: router,
        server: try configuration.tls.map { try .tls(http1, tlsConfiguration: try serverTLS(certificateChain: $0.certificateChain,
                                                                                           privateKey: $0.privateKey)) } ?? http1,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "FaceLedger"),
        services: services,
        onServerRunning: { channel in
            onListening(scheme, configuration.host, channel.localAddress?.port ?? configuration.port)
        },
        logger: logger)
}
