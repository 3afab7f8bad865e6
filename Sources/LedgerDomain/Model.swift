import Foundation

/// The ledger's state: what the write side decides against and the projector folds into read
/// models. Built only by `evolve`, from events — or loaded in part from rows that `evolve` wrote
/// (`PartialState` in LedgerService): then it holds only the collections, users and faces someone
/// named, each complete, with its collection's counts.
public struct LedgerState: Sendable, Hashable {
    public var collections: [String: FaceCollection] = [:]
    public init() {}
}

/// A face collection.
public struct FaceCollection: Sendable, Hashable {
    public var collectionId: String
    public var arn: String
    public var createdAt: Date
    /// The log position of the event that created it (orders ListCollections stably).
    public var createdPosition: Int64
    public var faces: [String: Face] = [:]
    public var users: [String: User] = [:]
    /// How many faces and users the collection has. Kept by `evolve`, not counted from `faces` and
    /// `users`, which a state loaded in part holds only some of.
    public var faceCount = 0
    public var userCount = 0
    /// The embedding dimension, fixed by the collection's first face.
    public var dimension: Int?
    /// The tags given to CreateCollection (none for collections created before tags were kept).
    public var tags: [String: String] = [:]

    public init(collectionId: String, arn: String, createdAt: Date, createdPosition: Int64, tags: [String: String] = [:]) {
        self.collectionId = collectionId
        self.arn = arn
        self.createdAt = createdAt
        self.createdPosition = createdPosition
        self.tags = tags
    }
}

/// A face of a collection with its embedding and, when associated, its user.
public struct Face: Sendable, Hashable {
    public var faceId: String
    public var externalImageId: String?
    public var imageId: String
    /// Detection confidence reported for the face.
    public var confidence: Double
    public var embedding: [Float]
    public var userId: String?
    public var indexedAt: Date
    /// The log position of its association with `userId`, which orders a user's faces.
    public var associatedPosition: Int64?

    public init(
        faceId: String, externalImageId: String?, imageId: String, confidence: Double, embedding: [Float], userId: String?,
        indexedAt: Date, associatedPosition: Int64? = nil
    ) {
        self.faceId = faceId
        self.externalImageId = externalImageId
        self.imageId = imageId
        self.confidence = confidence
        self.embedding = embedding
        self.userId = userId
        self.indexedAt = indexedAt
        self.associatedPosition = associatedPosition
    }
}

/// A user of a collection: how many faces it has, the sum its vector is made of, and its faces in the
/// order they were associated (its faces' `associatedPosition`).
///
/// `faceCount` and `vectorSum` are kept by `evolve` as faces come and go, so that deciding an
/// association never reads the user's faces. `faceIds` is complete in a state folded from the log; a
/// state loaded in part holds it only for the users loaded with their faces
/// (`NamedEntities.usersWithFaces` in LedgerService), the ones whose faces leave.
public struct User: Sendable, Hashable {
    public var userId: String
    public var createdAt: Date
    public var faceIds: [String] = []
    public var faceCount = 0
    /// Σ normalize(embedding) over its faces with biometrics, in association order
    /// (`Similarity.userVectorSum`); nil when it has none.
    public var vectorSum: [Double]?

    public init(userId: String, createdAt: Date, faceIds: [String] = [], faceCount: Int = 0, vectorSum: [Double]? = nil) {
        self.userId = userId
        self.createdAt = createdAt
        self.faceIds = faceIds
        self.faceCount = faceCount
        self.vectorSum = vectorSum
    }

    /// The vector the user is matched against, nil when it has no faces with biometrics.
    public var vector: [Double]? { vectorSum.flatMap(Similarity.unit(ofSum:)) }
}

/// The Rekognition user statuses.
public enum UserStatus: String, Sendable, Codable, Hashable {
    case active = "ACTIVE"
    case updating = "UPDATING"
    case creating = "CREATING"
    case created = "CREATED"

    /// The status of a user once everything about it is settled and folded.
    public static func settled(faceCount: Int) -> UserStatus { faceCount > 0 ? .active : .created }
}

/// Limits of the embedded engine, from the Rekognition model (docs/api.md).
public enum Limits {
    public static let facesPerUser = 100
    public static let faceIdsPerAssociation = 100
    public static let facesPerImport = 4096
    public static let embeddingDimensions = 2...4096
    public static let defaultUserMatchThreshold = 75.0
    public static let defaultSearchThreshold = 80.0
}

extension FaceCollection {
    /// `user`'s vector sum computed afresh from its faces (which must be loaded), as it stands.
    func vectorSum(of user: User) -> [Double]? {
        Similarity.userVectorSum(user.faceIds.compactMap { faces[$0]?.embedding })
    }
}
