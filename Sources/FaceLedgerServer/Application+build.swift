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

/// What `faceledger serve` needs to run.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var credentials: CredentialStore
    /// Commands that may wait for the processor before new ones get ProvisionedThroughputExceededException.
    public var maxPendingCommands: Int
    /// Request-body bytes read or held at once, all requests together; a body the budget cannot take
    /// gets 503 at once. Nil: `FACELEDGER_MAX_BODY_BYTES_IN_FLIGHT`, else 256 MiB (see `BodyBudget`).
    public var maxBodyBytesInFlight: Int? = nil
    /// How long a connection may stay silent (between requests, or in the middle of one) before it
    /// is closed. Nil: `FACELEDGER_IDLE_TIMEOUT` (seconds), else 60 seconds.
    public var idleTimeout: Duration? = nil
    /// How long a request may wait for the database before it is answered 503 (lock waits, queued
    /// commands, connecting).
    public var requestDeadline: Duration
    /// Where `GET /metrics` reads the process's metrics; nil: no `/metrics` (404).
    public var metrics: ServerMetrics? = nil
    /// The certificate chain and private key (PEM files) to serve `https://` with; nil: plain HTTP.
    public var tls: (certificateChain: String, privateKey: String)? = nil
    /// Upstream mode: the endpoint the ledger stands in front of; nil: the embedded engine.
    public var upstream: UpstreamSettings? = nil
    /// The tracing exporter (`TraceExport`), run with the server so it flushes at shutdown; nil: no tracing.
    public var traceExport: (any Service)? = nil
    /// The key-encryption keys of the biometrics (`Biometrics`); nil only where nothing is served
    /// (tests of the configuration): `buildApplication` refuses to start without them.
    public var masterKeys: MasterKeys? = nil
    public init(
        host: String = "127.0.0.1", port: Int = 8080, credentials: CredentialStore, maxPendingCommands: Int = 10_000,
        requestDeadline: Duration = .seconds(5)
    ) {
        self.requestDeadline = requestDeadline
        self.host = host
        self.port = port
        self.credentials = credentials
        self.maxPendingCommands = maxPendingCommands
    }
}

/// The request context: Hummingbird's core plus the client's address (recorded on events).
public struct LedgerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

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
                "full_reloads": .integer(processor.fullReloads),
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
            Gauge(label: "faceledger_write_side_full_reloads").record(processor.fullReloads)
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

/// Gives every response an `x-amzn-RequestId` (the API sets its own, which is also on the events).
struct RequestIdMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPResponseError {
            response = Response(status: error.status)
        }
        let name = HTTPField.Name("x-amzn-RequestId")!
        if response.headers[name] == nil { response.headers[name] = UUID().uuidString }
        return response
    }
}

/// The server's TLS configuration from PEM files: the certificate chain (leaf first) and its key.
func serverTLS(certificateChain: String, privateKey: String) throws -> TLSConfiguration {
    do {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateChain).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: privateKey, format: .pem)
        return TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
    } catch {
        throw ServerConfigurationError(description: "cannot load the TLS certificate \(certificateChain) or key \(privateKey): \(error)")
    }
}
