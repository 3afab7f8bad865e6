import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Tracing

/// Calls a Rekognition-compatible endpoint (Amazon Rekognition, or another FaceLedger) over AWS JSON
/// 1.1, signing every request with the ledger's own credentials. Connections are pooled; connecting
/// and each whole exchange have deadlines.
public final class UpstreamClient: Sendable {
    public struct Configuration: Sendable {
        public var endpoint: URL
        /// How long opening a connection may take; a request that could not connect never reached the upstream.
        public var connectTimeout: Duration
        /// How long one exchange may take, from sending to the last byte of the answer.
        public var requestTimeout: Duration
        /// Connections kept open to the upstream.
        public var maxConnections: Int

        public init(
            endpoint: URL, connectTimeout: Duration = .seconds(3), requestTimeout: Duration = .seconds(30),
            maxConnections: Int = 32
        ) {
            self.endpoint = endpoint
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.maxConnections = maxConnections
        }
    }

    /// The largest answer read (a SearchFacesByImage with many matches stays far below it).
    static let maxAnswerBytes = 64 << 20

    public let configuration: Configuration
    private let identity: UpstreamIdentity
    private let http: HTTPClient

    public init(configuration: Configuration, identity: UpstreamIdentity) {
        self.configuration = configuration
        self.identity = identity
        var http = HTTPClient.Configuration()
        http.timeout = .init(connect: .nanoseconds(Int64(configuration.connectTimeout.nanoseconds)))
        http.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = configuration.maxConnections
        // A request is never re-sent by the HTTP client behind the ledger's back: whether and how to
        // replay is the ledger's decision (same token, after recording the attempt).
        http.connectionPool.retryConnectionEstablishment = false
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
    }

    /// Sends `body` to the upstream with `X-Amz-Target: target`, signed; never throws: every failure
    /// is an `UpstreamExchange.failed` that says whether the upstream may have seen the request.
    public func send(target: String, body: [UInt8], now: Date = Date()) async -> UpstreamExchange {
        // Span names stay a bounded set (the operations FaceLedger knows): a passed-through target comes from a client.
        let name = target.split(separator: ".").last.flatMap { Operation(rawValue: String($0))?.rawValue } ?? "pass-through"
        return await withSpan("upstream " + name, ofKind: .client) { span in
            let exchange = await sendTraced(target: target, body: body, now: now)
            switch exchange {
            case .answered(let answer):
                span.attributes["http.response.status_code"] = answer.status
                if let code = answer.errorCode { span.attributes["aws.error_code"] = code }
            case .failed(let reason, _):
                span.setStatus(SpanStatus(code: .error, message: String(reason.prefix(200))))
            }
            return exchange
        }
    }

    private func sendTraced(target: String, body: [UInt8], now: Date) async -> UpstreamExchange {
        let url = configuration.endpoint
        var headers: [(name: String, value: String)] = [
            ("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target),
        ]
        if let token = identity.credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        let signed = SigV4Signer.sign(
            method: "POST", url: url, headers: headers, body: body, accessKeyId: identity.credentials.accessKeyId,
            secretAccessKey: identity.credentials.secretAccessKey, region: identity.region, now: now)
        var request = HTTPClientRequest(url: url.absoluteString.hasSuffix("/") ? url.absoluteString : url.absoluteString + "/")
        request.method = .POST
        var traced = signed
        // Trace context goes unsigned: a hop that rewrites it cannot break the signature.
        InstrumentationSystem.instrument.inject(ServiceContext.current ?? .topLevel, into: &traced, using: HeaderInjector())
        for header in traced { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await http.execute(request, timeout: .nanoseconds(Int64(configuration.requestTimeout.nanoseconds)))
            let bytes = try await response.body.collect(upTo: Self.maxAnswerBytes)
            return .answered(
                UpstreamAnswer(
                    status: Int(response.status.code),
                    headers: response.headers.map { (name: $0.name, value: $0.value) },
                    body: Array(buffer: bytes)))
        } catch {
            return .failed(reason: "\(error)", mayHaveReachedUpstream: !Self.isConnectFailure(error))
        }
    }

    /// Closes the pooled connections.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    /// True for failures before a connection existed, so before any byte of the request was sent.
    static func isConnectFailure(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError { return error == .connectTimeout }
        if error is NIOConnectionError { return true }
        if case .connectTimeout = error as? ChannelError { return true }
        return (error as? IOError).map { [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains($0.errnoCode) } ?? false
    }
}
