import LedgerDomain

/// A client-visible failure: an AWS error code and a message fit for the client.
public struct LedgerError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    public let code: ErrorCode
    public let message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }

    public static func invalidParameter(_ message: String) -> LedgerError { LedgerError(.invalidParameter, message) }

    /// How a refusal of the domain is answered: the one place its messages are written.
    public init(refusal: Refusal) {
        switch refusal {
        case .collectionNotFound(let id): self.init(.resourceNotFound, "The collection id: \(id) does not exist")
        case .collectionAlreadyExists(let id): self.init(.resourceAlreadyExists, "The collection id: \(id) already exists")
        case .userNotFound(let id): self.init(.resourceNotFound, "The user id: \(id) does not exist")
        case .userAlreadyExists(let id): self.init(.conflict, "The user id: \(id) already exists in the collection")
        case .userFaceLimit(let userId):
            self.init(.serviceQuotaExceeded, "The user \(userId) already has \(Limits.facesPerUser) faces")
        case .noImageModel:
            self.init(
                .invalidParameter,
                "The embedded engine has no image model: add faces with FaceLedger.ImportFaces and their embeddings")
        case .invalidFaces(let message): self.init(.invalidParameter, message)
        }
    }

    /// The error as the log records it.
    public var recorded: RecordedError { RecordedError(code: code.rawValue, message: message) }

    /// A recorded error as it is answered again. Every code the ledger records is one it can name
    /// (an upstream's other codes are kept beside, as `upstreamCode`).
    public init(recorded: RecordedError) {
        self.init(ErrorCode(rawValue: recorded.code) ?? .invalidParameter, recorded.message)
    }
}

extension LedgerError {
    /// The body of the error's answer, as AWS JSON 1.1 sends it (with the code also in the
    /// `x-amzn-ErrorType` header). `code` names an error the ledger's codes cannot: an upstream's own.
    public func body(code: String? = nil) -> JSONValue {
        .object(["__type": .string(code ?? self.code.rawValue), "message": .string(message)])
    }
}
