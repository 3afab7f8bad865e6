import Foundation

/// A validated command of the user-association API. Anything random (generated ids) is chosen
/// before `decide`, which stays a pure function.
public enum LedgerCommand: Sendable, Hashable {
    case createCollection(collectionId: String, arn: String, tags: [String: String] = [:])
    case deleteCollection(collectionId: String)
    case createUser(collectionId: String, userId: String)
    case deleteUser(collectionId: String, userId: String)
    case associateFaces(collectionId: String, userId: String, faceIds: [String], userMatchThreshold: Double)
    case disassociateFaces(collectionId: String, userId: String, faceIds: [String])
    case deleteFaces(collectionId: String, faceIds: [String])
    case importFaces(collectionId: String, faces: [FaceToImport])
    /// Faces found in an image by an upstream's image model (upstream mode only: the embedded engine
    /// has none, and refuses it).
    case indexFaces(collectionId: String, externalImageId: String?)
    /// Destroys the biometrics of faces (FaceLedger.ForgetFaces, `faceledger forget`).
    case forgetFaces(collectionId: String, faceIds: [String], reason: String?)

    public var collectionId: String {
        switch self {
        case .createCollection(let id, _, _), .deleteCollection(let id), .createUser(let id, _), .deleteUser(let id, _),
            .associateFaces(let id, _, _, _), .disassociateFaces(let id, _, _), .deleteFaces(let id, _),
            .importFaces(let id, _), .indexFaces(let id, _), .forgetFaces(let id, _, _):
            id
        }
    }
}

/// One face of an ImportFaces command.
public struct FaceToImport: Sendable, Hashable {
    public var faceId: String
    /// True when the client named the face id (then it must be new), false when it was generated.
    public var faceIdGiven: Bool
    public var externalImageId: String?
    public var imageId: String
    public var embedding: [Float]

    public init(faceId: String, faceIdGiven: Bool, externalImageId: String?, imageId: String, embedding: [Float]) {
        self.faceId = faceId
        self.faceIdGiven = faceIdGiven
        self.externalImageId = externalImageId
        self.imageId = imageId
        self.embedding = embedding
    }
}

/// What `decide` concluded: the events to append and the outcome; a refusal carries no events.
public struct Decision: Sendable, Hashable {
    public var events: [LedgerEvent]
    public var result: Result<CommandOutcome, Refusal>

    static func reject(_ refusal: Refusal) -> Decision { Decision(events: [], result: .failure(refusal)) }
}
