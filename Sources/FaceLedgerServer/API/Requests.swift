import Foundation
import LedgerDomain
import LedgerService

/// A request body of one operation: the members of the Rekognition model (others are ignored).
protocol OperationRequest: Codable, Sendable {
    /// Checks the model's constraints; throws InvalidParameterException.
    func validate() throws
}

/// A request that changes the ledger, so it goes through the command processor.
protocol CommandRequest: OperationRequest {
    var CollectionId: String? { get }
    var ClientRequestToken: String? { get }
    /// The request without its token: what a retry with the same token must match.
    var withoutToken: Self { get }
    /// The request as the log records it (no biometric data).
    var recorded: JSONValue { get throws }
    /// True when the operation carries a ClientRequestToken to the upstream (Rekognition's model
    /// marks it an idempotency token); the others are made safe to replay by probing (`UpstreamProbe`).
    static var carriesToken: Bool { get }
    /// The validated command; `region` (the request's signing region) goes into ARNs.
    func command(region: String) -> LedgerCommand
}

extension CommandRequest {
    static var carriesToken: Bool { false }
    var recorded: JSONValue { get throws { try JSONValue(encoding: self) } }
}

struct CreateCollectionRequest: CommandRequest {
    var CollectionId: String?
    var Tags: [String: String]?
    var ClientRequestToken: String? { nil }
    var withoutToken: Self { self }

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.checkTags(Tags, "tags")
        try v.finish()
    }

    /// The tags are kept: recorded on CollectionCreated and held by the collection.
    func command(region: String) -> LedgerCommand {
        .createCollection(collectionId: CollectionId!, arn: "arn:aws:rekognition:\(region):000000000000:collection/\(CollectionId!)",
                          tags: Tags ?? [:])
    }
}

struct CollectionRequest: CommandRequest {
    var CollectionId: String?
    var ClientRequestToken: String? { nil }
    var withoutToken: Self { self }

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        try v.finish()
    }

    func command(region: String) -> LedgerCommand { .deleteCollection(collectionId: CollectionId!) }
}

/// CreateUser or DeleteUser, as `Kind` says: the two operations share their members and checks.
struct UserRequest<Kind: UserOperation>: CommandRequest {
    static var carriesToken: Bool { true }
    var CollectionId: String?
    var UserId: String?
    var ClientRequestToken: String?
    var withoutToken: Self { var copy = self; copy.ClientRequestToken = nil; return copy }

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.check(UserId, "userId", Validator.userId, required: true)
        v.check(ClientRequestToken, "clientRequestToken", Validator.clientRequestToken)
        try v.finish()
    }

    func command(region: String) -> LedgerCommand { Kind.command(collectionId: CollectionId!, userId: UserId!) }
}

/// Which of the user operations a `UserRequest` is.
protocol UserOperation: Sendable {
    static func command(collectionId: String, userId: String) -> LedgerCommand
}

enum CreateUser: UserOperation {
    static func command(collectionId: String, userId: String) -> LedgerCommand { .createUser(collectionId: collectionId, userId: userId) }
}

enum DeleteUser: UserOperation {
    static func command(collectionId: String, userId: String) -> LedgerCommand { .deleteUser(collectionId: collectionId, userId: userId) }
}

struct AssociateFacesRequest: CommandRequest {
    static let carriesToken = true
    var CollectionId: String?
    var UserId: String?
    var FaceIds: [String]?
    var UserMatchThreshold: Double?
    var ClientRequestToken: String?
    var withoutToken: Self { var copy = self; copy.ClientRequestToken = nil; return copy }

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.check(UserId, "userId", Validator.userId, required: true)
        v.checkFaceIds(FaceIds, "faceIds", min: 1, max: Limits.faceIdsPerAssociation, required: true)
        v.checkPercent(UserMatchThreshold, "userMatchThreshold")
        v.check(ClientRequestToken, "clientRequestToken", Validator.clientRequestToken)
        try v.finish()
    }

    func command(region: String) -> LedgerCommand {
        .associateFaces(collectionId: CollectionId!, userId: UserId!, faceIds: FaceIds!,
                        userMatchThreshold: UserMatchThreshold ?? Limits.defaultUserMatchThreshold)
    }
}

struct DisassociateFacesRequest: CommandRequest {
    static let carriesToken = true
    var CollectionId: String?
    var UserId: String?
    var FaceIds: [String]?
    var ClientRequestToken: String?
    var withoutToken: Self { var copy = self; copy.ClientRequestToken = nil; return copy }

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.check(UserId, "userId", Validator.userId, required: true)
        v.checkFaceIds(FaceIds, "faceIds", min: 1, max: Limits.faceIdsPerAssociation, required: true)
        v.check(ClientRequestToken, "clientRequestToken", Validator.clientRequestToken)
        try v.finish()
    }

    func command(region: String) -> LedgerCommand {
        .disassociateFaces(collectionId: CollectionId!, userId: UserId!, faceIds: FaceIds!)
    }
}

struct DeleteFacesRequest: CommandRequest {
    var CollectionId: String?
    var FaceIds: [String]?
    var ClientRequestToken: String? { nil }
    var withoutToken: Self { self }

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.checkFaceIds(FaceIds, "faceIds", min: 1, max: 4096, required: true)
        try v.finish()
    }

    func command(region: String) -> LedgerCommand { .deleteFaces(collectionId: CollectionId!, faceIds: FaceIds!) }
}

/// FaceLedger.ImportFaces: how faces enter a collection of the embedded engine.
struct ImportFacesRequest: CommandRequest {
    static let carriesToken = true
    struct FaceInput: Codable, Sendable {
        var FaceId: String?
        var ExternalImageId: String?
        var Embedding: [Double]?
    }
    var CollectionId: String?
    var Faces: [FaceInput]?
    var ClientRequestToken: String?
    /// Generated ids, fixed once per request so the command stays a pure function of it.
    var generatedIds: [(faceId: String, imageId: String)] = []
    private enum CodingKeys: String, CodingKey { case CollectionId, Faces, ClientRequestToken }

    var withoutToken: Self { var copy = self; copy.ClientRequestToken = nil; return copy }

    /// Embeddings are biometric data: the log keeps them only in the FaceImported events' own field.
    var recorded: JSONValue {
        get throws {
            var request: [String: JSONValue] = ["CollectionId": .string(CollectionId ?? "")]
            if let ClientRequestToken { request["ClientRequestToken"] = .string(ClientRequestToken) }
            request["Faces"] = .array((Faces ?? []).map { face in
                var entry: [String: JSONValue] = ["EmbeddingDimension": .integer(face.Embedding?.count ?? 0)]
                if let id = face.FaceId { entry["FaceId"] = .string(id) }
                if let external = face.ExternalImageId { entry["ExternalImageId"] = .string(external) }
                return .object(entry)
            })
            return .object(request)
        }
    }

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.check(ClientRequestToken, "clientRequestToken", Validator.clientRequestToken)
        if let Faces {
            if !(1...Limits.facesPerImport).contains(Faces.count) {
                v.fail("Value at 'faces' failed to satisfy constraint: Member must have between 1 and \(Limits.facesPerImport) items")
            }
            for (index, face) in Faces.enumerated().prefix(Limits.facesPerImport) {
                v.checkFaceId(face.FaceId, "faces.\(index + 1).member.faceId")
                v.check(face.ExternalImageId, "faces.\(index + 1).member.externalImageId", Validator.externalImageId)
                guard let embedding = face.Embedding else {
                    v.fail("Value null at 'faces.\(index + 1).member.embedding' failed to satisfy constraint: Member must not be null")
                    continue
                }
                if !embedding.allSatisfy({ $0.isFinite && Float($0).isFinite }) {
                    v.fail("Value at 'faces.\(index + 1).member.embedding' failed to satisfy constraint: Member must hold finite single-precision numbers")
                }
            }
        } else {
            v.fail("Value null at 'faces' failed to satisfy constraint: Member must not be null")
        }
        try v.finish()
    }

    func command(region: String) -> LedgerCommand {
        let faces = zip(Faces ?? [], generatedIds).map { face, ids in
            FaceToImport(faceId: face.FaceId ?? ids.faceId, faceIdGiven: face.FaceId != nil, externalImageId: face.ExternalImageId,
                         imageId: ids.imageId, embedding: (face.Embedding ?? []).map(Float.init))
        }
        return .importFaces(collectionId: CollectionId!, faces: faces)
    }
}

/// IndexFaces, in upstream mode only (the embedded engine has no image model). The upstream checks
/// the image and the detection options; the ledger checks what it records.
struct IndexFacesRequest: CommandRequest {
    var CollectionId: String?
    var ExternalImageId: String?
    var MaxFaces: Int?
    var QualityFilter: String?
    var DetectionAttributes: [String]?
    var ClientRequestToken: String? { nil }
    var withoutToken: Self { self }

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.check(ExternalImageId, "externalImageId", Validator.externalImageId)
        try v.finish()
    }

    /// The image is not recorded (it is biometric data): the members above are, which the Codable
    /// encoding keeps to.
    func command(region: String) -> LedgerCommand { .indexFaces(collectionId: CollectionId!, externalImageId: ExternalImageId) }
}

/// FaceLedger.ForgetFaces: destroys the biometrics of faces (admins only).
struct ForgetFacesRequest: CommandRequest {
    var CollectionId: String?
    var FaceIds: [String]?
    var Reason: String?
    var ClientRequestToken: String?
    var withoutToken: Self { var copy = self; copy.ClientRequestToken = nil; return copy }

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.checkFaceIds(FaceIds, "faceIds", min: 1, max: 4096, required: true)
        v.check(ClientRequestToken, "clientRequestToken", Validator.clientRequestToken)
        if let Reason, Reason.count > 1024 {
            v.fail("Value at 'reason' failed to satisfy constraint: Member must have length less than or equal to 1024")
        }
        try v.finish()
    }

    func command(region: String) -> LedgerCommand {
        .forgetFaces(collectionId: CollectionId!, faceIds: FaceIds!, reason: Reason)
    }
}

// MARK: Reads

struct ListCollectionsRequest: OperationRequest {
    var NextToken: String?
    var MaxResults: Int?

    func validate() throws {
        var v = Validator()
        v.check(NextToken, "nextToken", Validator.paginationToken)
        v.checkRange(MaxResults, "maxResults", 0...4096)
        try v.finish()
    }
}

struct ListUsersRequest: OperationRequest {
    var CollectionId: String?
    var MaxResults: Int?
    var NextToken: String?

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.checkRange(MaxResults, "maxResults", 1...500)
        v.check(NextToken, "nextToken", Validator.paginationToken)
        try v.finish()
    }
}

struct ListFacesRequest: OperationRequest {
    var CollectionId: String?
    var NextToken: String?
    var MaxResults: Int?
    var UserId: String?
    var FaceIds: [String]?

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.check(NextToken, "nextToken", Validator.paginationToken)
        v.checkRange(MaxResults, "maxResults", 0...4096)
        v.check(UserId, "userId", Validator.userId)
        v.checkFaceIds(FaceIds, "faceIds", min: 1, max: 4096)
        try v.finish()
    }
}

struct SearchUsersRequest: OperationRequest {
    var CollectionId: String?
    var UserId: String?
    var FaceId: String?
    var UserMatchThreshold: Double?
    var MaxUsers: Int?

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.check(UserId, "userId", Validator.userId)
        v.checkFaceId(FaceId, "faceId")
        v.checkPercent(UserMatchThreshold, "userMatchThreshold")
        v.checkRange(MaxUsers, "maxUsers", 1...500)
        if (UserId == nil) == (FaceId == nil) {
            v.fail("Exactly one of FaceId and UserId must be given")
        }
        try v.finish()
    }
}

struct SearchFacesRequest: OperationRequest {
    var CollectionId: String?
    var FaceId: String?
    var MaxFaces: Int?
    var FaceMatchThreshold: Double?

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.checkFaceId(FaceId, "faceId", required: true)
        v.checkRange(MaxFaces, "maxFaces", 1...4096)
        v.checkPercent(FaceMatchThreshold, "faceMatchThreshold")
        try v.finish()
    }
}

/// FaceLedger.GetFaceHistory: every attempt that touched a face, oldest first.
struct GetFaceHistoryRequest: AuditRequest {
    var CollectionId: String?
    var FaceId: String?
    var MaxResults: Int?
    var NextToken: String?
    var From: Double?
    var To: Double?

    func validate() throws {
        var v = Validator()
        v.check(CollectionId, "collectionId", Validator.collectionId, required: true)
        v.checkFaceId(FaceId, "faceId", required: true)
        checkPage(&v)
        try v.finish()
    }

    var subject: AuditSubject { .face(collectionId: CollectionId!, faceId: FaceId!) }
}
