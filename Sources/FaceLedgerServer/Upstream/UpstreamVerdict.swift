import Foundation
import LedgerDomain
import LedgerService
import RekognitionWire

/// What one call to the upstream came to, as the wire showed it.
public enum UpstreamExchange: Sendable {
    /// The upstream answered (any status).
    case answered(UpstreamAnswer)
    /// No answer. `mayHaveReachedUpstream` is false only when the request was certainly never sent
    /// (the connection could not be opened); otherwise the upstream may have executed it.
    case failed(reason: String, mayHaveReachedUpstream: Bool)
}

/// An upstream's HTTP answer, kept byte for byte so a pass-through can return it unchanged.
public struct UpstreamAnswer: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The AWS error code of a failed answer: from `x-amzn-ErrorType` (`Code:http://…`), else the body's
    /// `__type` (`namespace#Code`); nil for a success or an answer without one.
    public var errorCode: String? {
        guard !(200..<300).contains(status) else { return nil }
        let raw =
            headers.first { $0.name.lowercased() == "x-amzn-errortype" }?.value
            ?? (try? JSONValue(parsing: Data(body)))?["__type"]?.stringValue
        return raw.map { String($0.split(separator: ":").first ?? "").split(separator: "#").last.map(String.init) ?? "" }
            .flatMap { $0.isEmpty ? nil : $0 }
    }
}

extension UpstreamAnswer {
    /// The answer as an outcome: the JSON of a success, or the error (an error code the ledger does
    /// not know reads as InvalidParameterException, its message kept).
    public var outcome: CommandAnswer {
        let json = try? JSONValue(parsing: Data(body))
        if (200..<300).contains(status), let json { return .success(json) }
        let message = json?["message"]?.stringValue ?? json?["Message"]?.stringValue ?? "the upstream answered \(status)"
        let code = errorCode.flatMap(ErrorCode.init(rawValue:)) ?? (status >= 500 ? .serviceUnavailable : .invalidParameter)
        return .failure(LedgerError(code, message))
    }
}

/// How the ledger must treat an upstream exchange.
public enum UpstreamVerdict: Sendable, Hashable {
    /// The upstream executed the command: settle it with the answer.
    case succeeded
    /// The upstream refused the command for what it is (a client error): settle it as rejected, and
    /// hand the answer to the client unchanged.
    case rejected(code: String)
    /// Not settled: the outcome is unknown or the failure passes (throttling, 5xx, a timeout, a lost
    /// connection, the upstream refusing the ledger's own credentials). Replay later with the same
    /// token.
    case retry(reason: String)

    /// Errors that say nothing about the command: the upstream is busy or failing, or refuses the
    /// ledger's own credentials (an operator fixes those; the command has not run).
    static let transientCodes: Set<String> = [
        "ThrottlingException", "ProvisionedThroughputExceededException", "LimitExceededException",
        "ServiceUnavailableException", "InternalServerError", "RequestTimeout", "RequestTimeoutException",
        "TooManyRequestsException", "PriorRequestNotComplete",
        "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignatureException",
        "MissingAuthenticationTokenException", "ExpiredTokenException", "AccessDeniedException",
    ]

    public init(_ exchange: UpstreamExchange) {
        switch exchange {
        case .failed(let reason, _):
            self = .retry(reason: reason)
        case .answered(let answer):
            if (200..<300).contains(answer.status) {
                self = .succeeded
            } else if answer.status >= 500 || answer.status == 429 || answer.status == 408 {
                self = .retry(reason: "upstream answered \(answer.status) \(answer.errorCode ?? "")")
            } else if let code = answer.errorCode {
                self =
                    Self.transientCodes.contains(code)
                    ? .retry(reason: "upstream answered \(answer.status) \(code)")
                    : .rejected(code: code)
            } else {
                // A 4xx without an AWS error code (a proxy's 404 or 413 page): retrying would not change
                // it, and would hold the command's keys until it is abandoned.
                self = .rejected(code: "HTTP\(answer.status)")
            }
        }
    }
}
