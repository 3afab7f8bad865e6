import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import LedgerDomain
import NIOCore
import RekognitionWire

/// One AWS JSON 1.1 exchange on `POST /`.
///
/// Everything that can be refused from the headers alone is refused before a byte of the body is
/// read: a declared body larger than the operation allows anybody (413), a request that fails the
/// header stage of SigV4 (unsigned, unknown key, malformed, expired or wrongly scoped signature), a
/// declared body larger than the key's role may send (413), and a body the process-wide byte budget
/// cannot take (503). Only then is the body read, within its limit and its reservation, and the
/// signature checked over it.
///
/// - Parameter principal: set to the principal the request's key names, once its headers are known.
func respond(
    to request: Request, context: LedgerRequestContext, api: LedgerAPI, budget: BodyBudget, principal: inout String?
) async -> Response {
    let requestId = UUID.random().uuidString
    let target = request.headers[HTTPField.Name("X-Amz-Target")!]
    let declaredLength = request.headers[.contentLength].flatMap(Int.init)
    // A client that will close the connection may be writing all of its body before it reads: it
    // gets its answer, then its body is read and dropped, so it is not cut off mid-write. On a
    // kept-alive connection Hummingbird drains an unread body itself.
    let closing = request.headers[.connection]?.lowercased().contains("close") ?? false
    func refuse(_ error: LedgerError) -> Response {
        render(.failure(error), requestId: requestId, thenDrain: closing ? request.body : nil)
    }

    let operationLimit = api.maxBodyBytes(target: target)
    if let declaredLength, declaredLength > operationLimit { return refuse(tooLarge(operationLimit)) }

    var headers = request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
    if let authority = request.head.authority { headers.append((name: "host", value: authority)) }
    var signed = SignedRequest(
        method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "",
        headers: headers, body: [])
    let admission: LedgerAPI.Admission
    switch api.admit(signed, target: target) {
    case .success(let admitted):
        admission = admitted
        principal = admitted.claim.key.principal
    case .failure(let error): return refuse(error)
    }
    if let declaredLength, declaredLength > admission.bodyLimit { return refuse(tooLarge(admission.bodyLimit)) }

    var reservation = BodyReservation(budget: budget)
    defer { reservation.releaseAll() }
    if let declaredLength, !reservation.grow(to: declaredLength) { return refuse(budgetExhausted()) }

    var body = request.body.makeAsyncIterator()
    let outcome: BodyOutcome
    do {
        outcome = try await readBody(&body, declaredLength: declaredLength, limit: admission.bodyLimit, reservation: &reservation)
    } catch {
        return render(.failure(LedgerError(.serialization, "The request body could not be read")), requestId: requestId)
    }
    switch outcome {
    case .complete(let bytes):
        signed.body = bytes
    case .tooSlow:
        // The client keeps the connection alive with a trickle, holding its share of the budget: cut.
        return render(
            .failure(
                LedgerError(
                    .requestTimeout,
                    "The request body arrived slower than \(BodyPace.minimumBytesPerSecond) bytes per second")), requestId: requestId)
    case .tooLarge, .overBudget:
        // Only a body without a declared length gets here, part of it read: the bytes held so far go
        // back to the budget now, and a closing client's rest is dropped before it gets its answer.
        reservation.releaseAll()
        if closing { try? await drop(&body) }
        return render(.failure(outcome == .tooLarge ? tooLarge(admission.bodyLimit) : budgetExhausted()), requestId: requestId)
    }
    let answer = await api.handle(
        admission, target: target, request: signed, requestId: requestId,
        sourceAddress: context.remoteAddress?.ipAddress)
    return render(answer, requestId: requestId)
}

private func tooLarge(_ limit: Int) -> LedgerError {
    LedgerError(.requestEntityTooLarge, "The request body is larger than \(limit) bytes")
}

private func budgetExhausted() -> LedgerError {
    LedgerError(.serviceUnavailable, "The server is reading as many request bodies as it can hold; retry later")
}

struct TruncatedBody: Error {}

/// How slowly a body may arrive. The idle timeout closes a silent connection; this cuts one kept
/// alive by a trickle (a byte now and then), which would otherwise hold its share of the byte budget.
enum BodyPace {
    static let grace: Duration = .seconds(10)
    static let minimumBytesPerSecond = 256 << 10

    /// True while `received` bytes in the time since `started` keep up: within the grace period,
    /// plus the time the bytes so far take at the minimum rate.
    static func isFastEnough(received: Int, since started: ContinuousClock.Instant, now: ContinuousClock.Instant = .now) -> Bool {
        now - started <= grace + .seconds(Double(received) / Double(minimumBytesPerSecond))
    }
}

enum BodyOutcome: Equatable {
    case complete([UInt8])
    case tooLarge
    case overBudget
    case tooSlow
}

/// Reads the body within `limit` bytes. A declared length was reserved before (and the HTTP framing
/// keeps the body to it); without one, the reservation grows chunk by chunk before each is kept.
func readBody(
    _ body: inout RequestBody.AsyncIterator, declaredLength: Int?, limit: Int, reservation: inout BodyReservation
) async throws -> BodyOutcome {
    var bytes: [UInt8] = []
    // Exactly the declared size: growing by doubling would hold up to twice the body for a moment.
    if let declaredLength { bytes.reserveCapacity(declaredLength) }
    let started = ContinuousClock.now
    while let chunk = try await body.next() {
        let total = bytes.count + chunk.readableBytes
        guard total <= limit else { return .tooLarge }
        guard BodyPace.isFastEnough(received: total, since: started) else { return .tooSlow }
        guard reservation.grow(to: total) else { return .overBudget }
        bytes.append(contentsOf: chunk.readableBytesView)
    }
    // A connection that ends mid-body (closed, or cut by the idle timeout) leaves a truncated body.
    if let declaredLength, bytes.count != declaredLength { throw TruncatedBody() }
    return .complete(bytes)
}

/// Reads and drops what is left of a body, up to 256 MiB (past that the connection is closed).
func drop(_ body: inout RequestBody.AsyncIterator) async throws {
    var dropped = 0
    while let chunk = try await body.next() {
        dropped += chunk.readableBytes
        if dropped > 256 << 20 { return }
    }
}

/// The ledger's answer, or the upstream's as it came (its status, content type and error type, and
/// its body byte for byte).
func render(_ reply: LedgerAPI.Reply, requestId: String) -> Response {
    guard case .upstream(let answer) = reply else {
        if case .answer(let answer) = reply { return render(answer, requestId: requestId) }
        return render(.failure(LedgerError(.internalServerError, "Internal server error")), requestId: requestId)
    }
    var headers: HTTPFields = [:]
    for (name, value) in answer.headers {
        switch name.lowercased() {
        case "content-type", "x-amzn-errortype":
            if let field = HTTPField.Name(name) { headers[field] = value }
        default:
            break
        }
    }
    headers[HTTPField.Name("x-amzn-RequestId")!] = requestId
    return Response(
        status: HTTPResponse.Status(code: answer.status), headers: headers,
        body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
}

/// A JSON body with status 200, or the AWS error envelope with the error's status. With `thenDrain`,
/// the request's unread body is read and dropped after the answer is written.
func render(_ answer: LedgerAPI.Answer, requestId: String, thenDrain unread: RequestBody? = nil) -> Response {
    var headers: HTTPFields = [.contentType: "application/x-amz-json-1.1"]
    headers[HTTPField.Name("x-amzn-RequestId")!] = requestId
    let status: HTTPResponse.Status
    let json: JSONValue
    switch answer {
    case .success(let value):
        (status, json) = (.ok, value)
    case .failure(let error):
        headers[HTTPField.Name("x-amzn-ErrorType")!] = error.code.rawValue
        status = HTTPResponse.Status(code: error.code.httpStatus)
        json = error.body()
    }
    let buffer = ByteBuffer(data: json.data)
    guard let unread else { return Response(status: status, headers: headers, body: .init(byteBuffer: buffer)) }
    return Response(
        status: status, headers: headers,
        body: ResponseBody(contentLength: buffer.readableBytes) { writer in
            try await writer.write(buffer)
            var body = unread.makeAsyncIterator()
            try? await drop(&body)
            try await writer.finish(nil)
        })
}
