/// The AWS error codes the ledger answers with.
public enum ErrorCode: String, Sendable, Hashable, Codable {
    case invalidParameter = "InvalidParameterException"
    case resourceNotFound = "ResourceNotFoundException"
    case resourceAlreadyExists = "ResourceAlreadyExistsException"
    case conflict = "ConflictException"
    case serviceQuotaExceeded = "ServiceQuotaExceededException"
    case idempotentParameterMismatch = "IdempotentParameterMismatchException"
    case invalidPaginationToken = "InvalidPaginationTokenException"
    case accessDenied = "AccessDeniedException"
    case throttling = "ThrottlingException"
    case provisionedThroughputExceeded = "ProvisionedThroughputExceededException"
    case serialization = "SerializationException"
    case unknownOperation = "UnknownOperationException"
    case invalidSignature = "InvalidSignatureException"
    case unrecognizedClient = "UnrecognizedClientException"
    case incompleteSignature = "IncompleteSignatureException"
    case missingAuthenticationToken = "MissingAuthenticationTokenException"
    case requestEntityTooLarge = "RequestEntityTooLargeException"
    case internalServerError = "InternalServerError"
    case serviceUnavailable = "ServiceUnavailableException"
    /// A request body that arrived too slowly (the SDKs retry it).
    case requestTimeout = "RequestTimeoutException"

    /// The HTTP status the error is sent with.
    public var httpStatus: Int {
        switch self {
        case .missingAuthenticationToken: 403
        case .requestEntityTooLarge: 413
        case .requestTimeout: 408
        case .internalServerError: 500
        case .serviceUnavailable: 503
        default: 400
        }
    }
}

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
    /// IndexFaces in the embedded engine, which finds no faces in images.
    public static let noImageModel = invalidParameter(
        "The embedded engine has no image model: add faces with FaceLedger.ImportFaces and their embeddings")
    static func collectionNotFound(_ id: String) -> LedgerError {
        LedgerError(.resourceNotFound, "The collection id: \(id) does not exist")
    }
    static func userNotFound(_ id: String) -> LedgerError {
        LedgerError(.resourceNotFound, "The user id: \(id) does not exist")
    }
}
