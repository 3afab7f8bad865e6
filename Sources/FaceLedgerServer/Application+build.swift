import Foundation
import HTTPTypes
import Hummingbird
import LedgerDomain
import LedgerService
import Logging
import NIOCore
import Postgres

/// What `faceledger serve` needs to run.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var credentials: CredentialStore
    /// Commands that may wait for the processor before new ones get ProvisionedThroughputExceededException.
    public var maxPendingCommands: Int
    public init(host: String = "127.0.0.1", port: Int = 8080, credentials: CredentialStore, maxPendingCommands: Int = 10_000) {
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
    onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }
) async throws -> some ApplicationProtocol {
    // Requests fail fast (503) while the database is away, rather than hanging on reconnects.
    let pool = PostgresPool(conninfo: conninfo, maxConnections: 16, reconnectTimeout: .seconds(2))
    let readModels = ReadModels(pool: pool)
    let projector = Projector(conninfo: conninfo, logger: logger)
    let processor = CommandProcessor(connection: try await PostgresConnection.connect(conninfo, reconnectTimeout: .seconds(2)), logger: logger,
                                     maxPending: configuration.maxPendingCommands, onCommitted: { projector.poke() })
    try await processor.warmUp()
    let api = LedgerAPI(processor: processor, projector: projector, readModels: readModels, audit: AuditQueries(pool: pool),
                        verifier: SigV4Verifier(credentials: configuration.credentials),
                        tokens: PaginationTokens(secret: try await readModels.paginationSecret()), logger: logger)

    let router = Router(context: LedgerRequestContext.self)
    router.add(middleware: RequestIdMiddleware())
    // Alive while the process runs, unless the embedded PostgreSQL it runs is gone: nothing in this
    // process starts it again (a new `serve` does).
    router.get("/health") { _, _ in DatabaseTarget.servedClusterIsDown() ? HTTPResponse.Status.serviceUnavailable : .ok }
    // Ready when the database answers now.
    router.get("/ready") { _, _ -> HTTPResponse.Status in
        if DatabaseTarget.servedClusterIsDown() { return .serviceUnavailable }
        do {
            try await pool.query("SELECT 1")
            return .ok
        } catch {
            return .serviceUnavailable
        }
    }
    // Operational state: how far the projector trails the log.
    router.get("/status") { _, _ -> Response in
        do {
            let lag = try await readModels.projectorLag()
            let body = JSONValue.object(["projector": .object([
                "checkpoint": .number(Double(lag.checkpoint)), "head": .number(Double(lag.head)),
                "lag_events": .number(Double(lag.events)), "lag_seconds": .number(lag.seconds),
            ])])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: body.data)))
        } catch {
            return Response(status: .serviceUnavailable)
        }
    }
    router.post("/") { request, context in
        await respond(to: request, context: context, api: api)
    }
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "FaceLedger"),
        services: [CommandProcessorService(processor: processor), projector],
        onServerRunning: { channel in
            onListening(configuration.host, channel.localAddress?.port ?? configuration.port)
        },
        logger: logger)
}

/// One AWS JSON 1.1 exchange: body within the operation's limit, signature, operation, answer.
func respond(to request: Request, context: LedgerRequestContext, api: LedgerAPI) async -> Response {
    let requestId = UUID().uuidString
    let target = request.headers[HTTPField.Name("X-Amz-Target")!]
    let limit = (try? Operation.from(target: target))?.maxBodyBytes ?? (1 << 20)
    let tooLarge = LedgerError(.requestEntityTooLarge, "The request body is larger than \(limit) bytes")
    // A declared oversize body is refused before it is read. Only a client that will close the
    // connection gets its body read (and dropped) first: it may be writing all of it before it reads,
    // and would otherwise stall; on a kept-alive connection the server drains the body itself.
    let declaredTooLarge = request.headers[.contentLength].flatMap(Int.init).map { $0 > limit } ?? false
    let closing = request.headers[.connection]?.lowercased().contains("close") ?? false
    if declaredTooLarge && !closing { return render(.failure(tooLarge), requestId: requestId) }
    let body: ByteBuffer
    do {
        guard let collected = try await collect(request.body, limit: declaredTooLarge ? 0 : limit) else {
            return render(.failure(tooLarge), requestId: requestId)
        }
        body = collected
    } catch {
        return render(.failure(LedgerError(.serialization, "The request body could not be read")), requestId: requestId)
    }
    var headers = request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
    if let authority = request.head.authority { headers.append((name: "host", value: authority)) }
    let signed = SignedRequest(method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "",
                               headers: headers, body: Array(buffer: body))
    let answer = await api.handle(target: target, request: signed, requestId: requestId,
                                  sourceAddress: context.remoteAddress?.ipAddress)
    return render(answer, requestId: requestId)
}

/// The body, or nil when it is larger than `limit` bytes. An oversize body is still read (and
/// dropped, up to 256 MiB), so that a client writing all of it before it reads gets the answer.
func collect(_ body: RequestBody, limit: Int) async throws -> ByteBuffer? {
    var buffer = ByteBuffer()
    var dropped = 0
    for try await chunk in body {
        if dropped == 0, buffer.readableBytes + chunk.readableBytes <= limit {
            var chunk = chunk
            buffer.writeBuffer(&chunk)
        } else {
            dropped += chunk.readableBytes
            if dropped > 256 << 20 { break }
        }
    }
    return dropped == 0 ? buffer : nil
}

/// A JSON body with status 200, or the AWS error envelope with the error's status.
func render(_ answer: LedgerAPI.Answer, requestId: String) -> Response {
    var headers: HTTPFields = [.contentType: "application/x-amz-json-1.1"]
    headers[HTTPField.Name("x-amzn-RequestId")!] = requestId
    switch answer {
    case .success(let json):
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(data: json.data)))
    case .failure(let error):
        headers[HTTPField.Name("x-amzn-ErrorType")!] = error.code.rawValue
        let body = JSONValue.object(["__type": .string(error.code.rawValue), "message": .string(error.message)])
        return Response(status: HTTPResponse.Status(code: error.code.httpStatus), headers: headers,
                        body: .init(byteBuffer: ByteBuffer(data: body.data)))
    }
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
