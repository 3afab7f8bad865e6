import Foundation

/// Where and when an event was recorded: what `evolve` needs besides the event.
public struct EventContext: Sendable, Hashable {
    public var collectionId: String
    public var position: Int64
    public var recordedAt: Date

    public init(collectionId: String, position: Int64, recordedAt: Date) {
        self.collectionId = collectionId
        self.position = position
        self.recordedAt = recordedAt
    }
}

extension LedgerState {
    /// Folds one event into the state. The command side, the projector and rebuilds all use this one
    /// function, so what is decided and what is read cannot drift apart.
    public mutating func evolve(_ event: LedgerEvent, _ context: EventContext) {
        let id = context.collectionId
        switch event {
        case .commandAccepted, .commandSettled, .commandRejected, .commandReplayed, .faceAttempted, .upstreamAttempted,
            .commandAbandoned:
            return  // no state: the command's record and the audit trail
        case .collectionCreated(let e):
            collections[id] = FaceCollection(collectionId: id, arn: e.arn, createdAt: context.recordedAt,
                                         createdPosition: context.position, tags: e.tags ?? [:])
        case .collectionDeleted:
            collections[id] = nil
        case .userCreated(let e):
            if collections[id]?.users[e.userId] == nil { collections[id]?.userCount += 1 }
            collections[id]?.users[e.userId] = User(userId: e.userId, createdAt: context.recordedAt)
        case .userDeleted(let e):
            if collections[id]?.users[e.userId] != nil { collections[id]?.userCount -= 1 }
            collections[id]?.users[e.userId] = nil
        case .faceImported(let e, let embedding):
            if collections[id]?.faces[e.faceId] == nil { collections[id]?.faceCount += 1 }
            collections[id]?.faces[e.faceId] = Face(
                faceId: e.faceId, externalImageId: e.externalImageId, imageId: e.imageId, confidence: e.confidence,
                embedding: embedding, userId: nil, indexedAt: context.recordedAt)
            // Faces an upstream indexed come without embeddings; they fix no dimension.
            if collections[id]?.dimension == nil, !embedding.isEmpty { collections[id]?.dimension = embedding.count }
        case .faceAssociated(let e):
            collections[id]?.faces[e.faceId]?.userId = e.userId
            collections[id]?.faces[e.faceId]?.associatedPosition = context.position
            collections[id]?.users[e.userId]?.faceIds.append(e.faceId)
        case .faceDisassociated(let e):
            collections[id]?.faces[e.faceId]?.userId = nil
            collections[id]?.faces[e.faceId]?.associatedPosition = nil
            collections[id]?.users[e.userId]?.faceIds.removeAll { $0 == e.faceId }
        case .faceDeleted(let e):
            if collections[id]?.faces[e.faceId] != nil { collections[id]?.faceCount -= 1 }
            collections[id]?.faces[e.faceId] = nil
        case .faceForgotten(let e):
            // The face stays, with its associations; its biometrics are gone (and with them its part in
            // its user's vector and in every search).
            collections[id]?.faces[e.faceId]?.embedding = []
        }
    }
}
