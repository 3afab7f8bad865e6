// The wire of the Amazon Rekognition API as FaceLedger speaks it: error codes and their HTTP
// statuses, the response shapes, and how the domain's outcomes and refusals are rendered. The
// domain (`LedgerDomain`) knows none of it.

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
