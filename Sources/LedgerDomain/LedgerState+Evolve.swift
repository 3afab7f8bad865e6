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
            collections[id] = FaceCollection(
                collectionId: id, arn: e.arn, createdAt: context.recordedAt,
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
            let replacedOwner = collections[id]?.faces[e.faceId]?.userId
            if collections[id]?.faces[e.faceId] == nil { collections[id]?.faceCount += 1 }
            defer { if let replacedOwner { recomputeVectorSum(of: replacedOwner, in: id) } }
            collections[id]?.faces[e.faceId] = Face(
                faceId: e.faceId, externalImageId: e.externalImageId, imageId: e.imageId, confidence: e.confidence,
                embedding: embedding, userId: nil, indexedAt: context.recordedAt)
            // Faces an upstream indexed come without embeddings; they fix no dimension.
            if collections[id]?.dimension == nil, !embedding.isEmpty { collections[id]?.dimension = embedding.count }
        case .faceAssociated(let e):
            collections[id]?.faces[e.faceId]?.userId = e.userId
            collections[id]?.faces[e.faceId]?.associatedPosition = context.position
            collections[id]?.users[e.userId]?.faceIds.append(e.faceId)
            collections[id]?.users[e.userId]?.faceCount += 1
            if let embedding = collections[id]?.faces[e.faceId]?.embedding, var user = collections[id]?.users[e.userId] {
                Similarity.add(embedding, to: &user.vectorSum)
                collections[id]?.users[e.userId] = user
            }
        case .faceDisassociated(let e):
            collections[id]?.faces[e.faceId]?.userId = nil
            collections[id]?.faces[e.faceId]?.associatedPosition = nil
            if var user = collections[id]?.users[e.userId] {
                let held = user.faceIds.count
                user.faceIds.removeAll { $0 == e.faceId }
                user.faceCount -= held - user.faceIds.count
                collections[id]?.users[e.userId] = user
                recomputeVectorSum(of: e.userId, in: id)
            }
        case .faceDeleted(let e):
            let owner = collections[id]?.faces[e.faceId]?.userId
            if collections[id]?.faces[e.faceId] != nil { collections[id]?.faceCount -= 1 }
            collections[id]?.faces[e.faceId] = nil
            if let owner { recomputeVectorSum(of: owner, in: id) }
        case .faceForgotten(let e):
            // The face stays, with its associations; its biometrics are gone (and with them its part in
            // its user's vector and in every search).
            collections[id]?.faces[e.faceId]?.embedding = []
            if let owner = collections[id]?.faces[e.faceId]?.userId { recomputeVectorSum(of: owner, in: id) }
        }
    }

    /// A user's vector sum computed afresh from its faces, when one leaves or loses its biometrics: a
    /// running sum that subtracted would drift from the sum of what remains by rounding.
    private mutating func recomputeVectorSum(of userId: String, in id: String) {
        guard let collection = collections[id], let user = collection.users[userId] else { return }
        collections[id]?.users[userId]?.vectorSum = collection.vectorSum(of: user)
    }
}
