import LedgerDomain
import RekognitionWire

/// The operations FaceLedger serves, by `X-Amz-Target`.
enum Operation: String, CaseIterable, Sendable {
    case createCollection = "CreateCollection"
    case describeCollection = "DescribeCollection"
    case listCollections = "ListCollections"
    case deleteCollection = "DeleteCollection"
    case createUser = "CreateUser"
    case deleteUser = "DeleteUser"
    case listUsers = "ListUsers"
    case associateFaces = "AssociateFaces"
    case disassociateFaces = "DisassociateFaces"
    case listFaces = "ListFaces"
    case deleteFaces = "DeleteFaces"
    case searchUsers = "SearchUsers"
    case searchFaces = "SearchFaces"
    case indexFaces = "IndexFaces"
    case importFaces = "ImportFaces"
    case forgetFaces = "ForgetFaces"
    case getFaceHistory = "GetFaceHistory"
    case getUserHistory = "GetUserHistory"
    case getPrincipalHistory = "GetPrincipalHistory"
    case getCollectionHistory = "GetCollectionHistory"
    case getRequestHistory = "GetRequestHistory"

    static let rekognitionPrefix = "RekognitionService."
    static let extensionPrefix = "FaceLedger."

    /// The operation a target names; a Rekognition operation FaceLedger does not implement is an
    /// UnknownOperationException like any other unknown target.
    static func from(target: String?) throws -> Operation {
        guard let target, !target.isEmpty else {
            throw LedgerError(.unknownOperation, "Missing X-Amz-Target header")
        }
        if target.hasPrefix(rekognitionPrefix), let operation = Operation(rawValue: String(target.dropFirst(rekognitionPrefix.count))),
            !operation.isExtension
        {
            return operation
        }
        if target.hasPrefix(extensionPrefix), let operation = Operation(rawValue: String(target.dropFirst(extensionPrefix.count))),
            operation.isExtension
        {
            return operation
        }
        throw LedgerError(.unknownOperation, "FaceLedger does not implement the operation \(target.prefix(128))")
    }

    /// FaceLedger's own operations (target prefix `FaceLedger.`); each is in the botocore model
    /// `clients/botocore/faceledger/2026-11-30/service-2.json`.
    var isExtension: Bool { self == .importFaces || self == .forgetFaces || isAudit }

    /// The audit operations: for admins and auditors.
    var isAudit: Bool {
        switch self {
        case .getFaceHistory, .getUserHistory, .getPrincipalHistory, .getCollectionHistory, .getRequestHistory: true
        default: false
        }
    }

    /// Operations that change the ledger (and so are recorded, even when they fail).
    var isCommand: Bool {
        switch self {
        case .createCollection, .deleteCollection, .createUser, .deleteUser, .associateFaces, .disassociateFaces,
            .deleteFaces, .importFaces, .indexFaces, .forgetFaces:
            true
        case .describeCollection, .listCollections, .listUsers, .listFaces, .searchUsers, .searchFaces, .getFaceHistory,
            .getUserHistory, .getPrincipalHistory, .getCollectionHistory, .getRequestHistory:
            false
        }
    }

    /// Admins may do everything, writers every Rekognition operation and ImportFaces, auditors
    /// only reads (and the audit operations). Forgetting biometrics is for admins alone.
    func isAllowed(for role: Role) -> Bool {
        switch role {
        case .admin: true
        case .writer: !isAudit && self != .forgetFaces
        case .auditor: !isCommand
        }
    }

    /// The body limit of every operation but ImportFaces, and of a target that names no operation.
    static let defaultMaxBodyBytes = 1 << 20
    /// ImportFaces carries embeddings: its bodies may be this large.
    static let importMaxBodyBytes = 64 << 20
    /// Upstream mode: IndexFaces and passed-through operations may carry an image (Rekognition takes up
    /// to 5 MB as `Image.Bytes`, about 6.7 MB in base64): their bodies may be this large.
    static let imageMaxBodyBytes = 8 << 20

    /// Bodies past this are refused before they are read, whoever sends them.
    var maxBodyBytes: Int { self == .importFaces ? Self.importMaxBodyBytes : Self.defaultMaxBodyBytes }

    /// Bodies past this are refused before they are read, for a key of `role`: only a role that may
    /// perform the operation gets its large limit, so a key that may not import cannot make the
    /// server read 64 MiB (its denied attempt is still recorded, from a body within the default limit).
    func maxBodyBytes(for role: Role) -> Int {
        isAllowed(for: role) ? maxBodyBytes : min(maxBodyBytes, Self.defaultMaxBodyBytes)
    }
}
