import Foundation
import LedgerDomain
import LedgerService

/// A request body of one operation: the members of the Rekognition model (others are ignored).
protocol OperationRequest: Codable, Sendable {
    /// The model's constraints on the members, checked in this order (a message lists every problem).
    static var members: [MemberRule<Self>] { get }
}

extension OperationRequest {
    /// Checks the member table; throws InvalidParameterException listing every problem.
    func validate() throws {
        var v = Validator()
        for rule in Self.members { rule.check(self, &v) }
        try v.finish()
    }
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

/// A command whose operation has no ClientRequestToken in Rekognition's model.
protocol TokenlessRequest: CommandRequest {}

extension TokenlessRequest {
    var ClientRequestToken: String? { nil }
    var withoutToken: Self { self }
}

/// A command whose operation has a ClientRequestToken member.
protocol TokenRequest: CommandRequest {
    var ClientRequestToken: String? { get set }
}

extension TokenRequest {
    var withoutToken: Self {
        var copy = self
        copy.ClientRequestToken = nil
        return copy
    }
}

struct CreateCollectionRequest: TokenlessRequest {
    var CollectionId: String?
    var Tags: [String: String]?

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .tags(\.Tags, "tags"),
        ]
    }

    /// The tags are kept: recorded on CollectionCreated and held by the collection.
    func command(region: String) -> LedgerCommand {
        .createCollection(
            collectionId: CollectionId!, arn: "arn:aws:rekognition:\(region):000000000000:collection/\(CollectionId!)",
            tags: Tags ?? [:])
    }
}

struct CollectionRequest: TokenlessRequest {
    var CollectionId: String?

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true)
        ]
    }

    func command(region: String) -> LedgerCommand { .deleteCollection(collectionId: CollectionId!) }
}

/// CreateUser or DeleteUser, as `Kind` says: the two operations share their members and checks.
struct UserRequest<Kind: UserOperation>: TokenRequest {
    static var carriesToken: Bool { true }
    var CollectionId: String?
    var UserId: String?
    var ClientRequestToken: String?

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .string(\.UserId, "userId", Validator.userId, required: true),
            .string(\.ClientRequestToken, "clientRequestToken", Validator.clientRequestToken),
        ]
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

struct AssociateFacesRequest: TokenRequest {
    static let carriesToken = true
    var CollectionId: String?
    var UserId: String?
    var FaceIds: [String]?
    var UserMatchThreshold: Double?
    var ClientRequestToken: String?

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .string(\.UserId, "userId", Validator.userId, required: true),
            .faceIds(\.FaceIds, "faceIds", count: 1...Limits.faceIdsPerAssociation, required: true),
            .percent(\.UserMatchThreshold, "userMatchThreshold"),
            .string(\.ClientRequestToken, "clientRequestToken", Validator.clientRequestToken),
        ]
    }

    func command(region: String) -> LedgerCommand {
        .associateFaces(
            collectionId: CollectionId!, userId: UserId!, faceIds: FaceIds!,
            userMatchThreshold: UserMatchThreshold ?? Limits.defaultUserMatchThreshold)
    }
}

struct DisassociateFacesRequest: TokenRequest {
    static let carriesToken = true
    var CollectionId: String?
    var UserId: String?
    var FaceIds: [String]?
    var ClientRequestToken: String?

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .string(\.UserId, "userId", Validator.userId, required: true),
            .faceIds(\.FaceIds, "faceIds", count: 1...Limits.faceIdsPerAssociation, required: true),
            .string(\.ClientRequestToken, "clientRequestToken", Validator.clientRequestToken),
        ]
    }

    func command(region: String) -> LedgerCommand {
        .disassociateFaces(collectionId: CollectionId!, userId: UserId!, faceIds: FaceIds!)
    }
}

struct DeleteFacesRequest: TokenlessRequest {
    var CollectionId: String?
    var FaceIds: [String]?

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .faceIds(\.FaceIds, "faceIds", count: 1...4096, required: true),
        ]
    }

    func command(region: String) -> LedgerCommand { .deleteFaces(collectionId: CollectionId!, faceIds: FaceIds!) }
}

/// FaceLedger.ImportFaces: how faces enter a collection of the embedded engine.
struct ImportFacesRequest: TokenRequest {
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

    /// Draws the generated ids: a face id and an image id for each face.
    mutating func generateIds() {
        generatedIds = (Faces ?? []).map { _ in (UUID.random().uuidString.lowercased(), UUID.random().uuidString.lowercased()) }
    }
    private enum CodingKeys: String, CodingKey { case CollectionId, Faces, ClientRequestToken }

    /// Embeddings are biometric data: the log keeps them only in the FaceImported events' own field.
    var recorded: JSONValue {
        get throws {
            var request: [String: JSONValue] = ["CollectionId": .string(CollectionId ?? "")]
            if let ClientRequestToken { request["ClientRequestToken"] = .string(ClientRequestToken) }
            request["Faces"] = .array(
                (Faces ?? []).map { face in
                    var entry: [String: JSONValue] = ["EmbeddingDimension": .integer(face.Embedding?.count ?? 0)]
                    if let id = face.FaceId { entry["FaceId"] = .string(id) }
                    if let external = face.ExternalImageId { entry["ExternalImageId"] = .string(external) }
                    return .object(entry)
                })
            return .object(request)
        }
    }

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .string(\.ClientRequestToken, "clientRequestToken", Validator.clientRequestToken),
            .custom { request, v in
                guard let faces = request.Faces else {
                    v.fail("Value null at 'faces' failed to satisfy constraint: Member must not be null")
                    return
                }
                if !(1...Limits.facesPerImport).contains(faces.count) {
                    v.fail("Value at 'faces' failed to satisfy constraint: Member must have between 1 and \(Limits.facesPerImport) items")
                }
                for (index, face) in faces.enumerated().prefix(Limits.facesPerImport) {
                    v.checkFaceId(face.FaceId, "faces.\(index + 1).member.faceId")
                    v.check(face.ExternalImageId, "faces.\(index + 1).member.externalImageId", Validator.externalImageId)
                    guard let embedding = face.Embedding else {
                        v.fail("Value null at 'faces.\(index + 1).member.embedding' failed to satisfy constraint: Member must not be null")
                        continue
                    }
                    if !embedding.allSatisfy({ $0.isFinite && Float($0).isFinite }) {
                        v.fail(
                            "Value at 'faces.\(index + 1).member.embedding' failed to satisfy constraint: Member must hold finite single-precision numbers"
                        )
                    }
                }
            },
        ]
    }

    func command(region: String) -> LedgerCommand {
        let faces = zip(Faces ?? [], generatedIds).map { face, ids in
            FaceToImport(
                faceId: face.FaceId ?? ids.faceId, faceIdGiven: face.FaceId != nil, externalImageId: face.ExternalImageId,
                imageId: ids.imageId, embedding: (face.Embedding ?? []).map(Float.init))
        }
        return .importFaces(collectionId: CollectionId!, faces: faces)
    }
}

/// IndexFaces, in upstream mode only (the embedded engine has no image model). The upstream checks
/// the image and the detection options; the ledger checks what it records.
struct IndexFacesRequest: TokenlessRequest {
    var CollectionId: String?
    var ExternalImageId: String?
    var MaxFaces: Int?
    var QualityFilter: String?
    var DetectionAttributes: [String]?

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .string(\.ExternalImageId, "externalImageId", Validator.externalImageId),
        ]
    }

    /// The image is not recorded (it is biometric data): the members above are, which the Codable
    /// encoding keeps to.
    func command(region: String) -> LedgerCommand { .indexFaces(collectionId: CollectionId!, externalImageId: ExternalImageId) }
}

/// FaceLedger.ForgetFaces: destroys the biometrics of faces (admins only).
struct ForgetFacesRequest: TokenRequest {
    var CollectionId: String?
    var FaceIds: [String]?
    var Reason: String?
    var ClientRequestToken: String?

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .faceIds(\.FaceIds, "faceIds", count: 1...4096, required: true),
            .string(\.ClientRequestToken, "clientRequestToken", Validator.clientRequestToken),
            .custom { request, v in
                if let reason = request.Reason, reason.count > 1024 {
                    v.fail("Value at 'reason' failed to satisfy constraint: Member must have length less than or equal to 1024")
                }
            },
        ]
    }

    func command(region: String) -> LedgerCommand {
        .forgetFaces(collectionId: CollectionId!, faceIds: FaceIds!, reason: Reason)
    }
}

// MARK: Reads

struct ListCollectionsRequest: OperationRequest {
    var NextToken: String?
    var MaxResults: Int?

    static var members: [MemberRule<Self>] {
        [
            .string(\.NextToken, "nextToken", Validator.paginationToken),
            .range(\.MaxResults, "maxResults", 0...4096),
        ]
    }
}

struct ListUsersRequest: OperationRequest {
    var CollectionId: String?
    var MaxResults: Int?
    var NextToken: String?

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .range(\.MaxResults, "maxResults", 1...500),
            .string(\.NextToken, "nextToken", Validator.paginationToken),
        ]
    }
}

struct ListFacesRequest: OperationRequest {
    var CollectionId: String?
    var NextToken: String?
    var MaxResults: Int?
    var UserId: String?
    var FaceIds: [String]?

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .string(\.NextToken, "nextToken", Validator.paginationToken),
            .range(\.MaxResults, "maxResults", 0...4096),
            .string(\.UserId, "userId", Validator.userId),
            .faceIds(\.FaceIds, "faceIds", count: 1...4096),
        ]
    }
}

struct SearchUsersRequest: OperationRequest {
    var CollectionId: String?
    var UserId: String?
    var FaceId: String?
    var UserMatchThreshold: Double?
    var MaxUsers: Int?

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .string(\.UserId, "userId", Validator.userId),
            .faceId(\.FaceId, "faceId"),
            .percent(\.UserMatchThreshold, "userMatchThreshold"),
            .range(\.MaxUsers, "maxUsers", 1...500),
            .custom { request, v in
                if (request.UserId == nil) == (request.FaceId == nil) {
                    v.fail("Exactly one of FaceId and UserId must be given")
                }
            },
        ]
    }
}

struct SearchFacesRequest: OperationRequest {
    var CollectionId: String?
    var FaceId: String?
    var MaxFaces: Int?
    var FaceMatchThreshold: Double?

    static var members: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .faceId(\.FaceId, "faceId", required: true),
            .range(\.MaxFaces, "maxFaces", 1...4096),
            .percent(\.FaceMatchThreshold, "faceMatchThreshold"),
        ]
    }
}
