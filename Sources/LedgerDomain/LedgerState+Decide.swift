import Foundation

extension LedgerState {
    /// Decides a command against the state: pure, no I/O. The command side appends the events and
    /// answers with the result; a failure carries no events.
    public func decide(_ command: LedgerCommand) -> Decision {
        do throws(Refusal) {
            switch command {
            case .createCollection(let id, let arn, let tags): return try createCollection(id, arn: arn, tags: tags)
            case .deleteCollection(let id): return try deleteCollection(id)
            case .createUser(let id, let userId): return try createUser(id, userId)
            case .deleteUser(let id, let userId): return try deleteUser(id, userId)
            case .associateFaces(let id, let userId, let faceIds, let threshold):
                return try associateFaces(id, userId, faceIds, threshold: threshold)
            case .disassociateFaces(let id, let userId, let faceIds): return try disassociateFaces(id, userId, faceIds)
            case .deleteFaces(let id, let faceIds): return try deleteFaces(id, faceIds)
            case .importFaces(let id, let faces): return try importFaces(id, faces)
            case .indexFaces:
                throw .noImageModel
            case .forgetFaces(let id, let faceIds, let reason): return try forgetFaces(id, faceIds, reason: reason)
            }
        } catch {
            return .reject(error)
        }
    }

    private func collection(_ id: String) throws(Refusal) -> FaceCollection {
        guard let collection = collections[id] else { throw .collectionNotFound(id) }
        return collection
    }

    private func user(_ userId: String, in collection: FaceCollection) throws(Refusal) -> User {
        guard let user = collection.users[userId] else { throw .userNotFound(userId) }
        return user
    }

    private func accept(_ events: [LedgerEvent], _ outcome: CommandOutcome) -> Decision {
        Decision(events: events, result: .success(outcome))
    }

    private func createCollection(_ id: String, arn: String, tags: [String: String]) throws(Refusal) -> Decision {
        guard collections[id] == nil else { throw .collectionAlreadyExists(id) }
        return accept([.collectionCreated(CollectionCreated(collectionId: id, arn: arn, tags: tags))], .collectionCreated(arn: arn))
    }

    private func deleteCollection(_ id: String) throws(Refusal) -> Decision {
        _ = try collection(id)
        return accept([.collectionDeleted(CollectionDeleted(collectionId: id))], .collectionDeleted)
    }

    private func createUser(_ id: String, _ userId: String) throws(Refusal) -> Decision {
        let collection = try collection(id)
        guard collection.users[userId] == nil else { throw .userAlreadyExists(userId) }
        return accept([.userCreated(UserCreated(userId: userId))], .userCreated)
    }

    /// Disassociates the user's faces, then deletes the user.
    private func deleteUser(_ id: String, _ userId: String) throws(Refusal) -> Decision {
        let user = try user(userId, in: try collection(id))
        let events =
            user.faceIds.map { LedgerEvent.faceDisassociated(FaceDisassociated(faceId: $0, userId: userId)) }
            + [.userDeleted(UserDeleted(userId: userId))]
        return accept(events, .userDeleted)
    }

    /// AssociateFaces, rule by rule (docs/api.md).
    private func associateFaces(_ id: String, _ userId: String, _ faceIds: [String], threshold: Double) throws(Refusal) -> Decision {
        let collection = try collection(id)
        let user = try user(userId, in: collection)
        guard user.faceCount < Limits.facesPerUser else { throw .userFaceLimit(userId: userId) }
        // Every face is scored against the user as it stood before the request, so order cannot matter.
        let userVector = user.vector
        var held = user.faceCount
        var events: [LedgerEvent] = []
        var changes = FaceChanges()
        func refuse(_ faceId: String, _ outcome: FaceOutcome, owner: String? = nil, confidence: Double? = nil) {
            events.append(
                .faceAttempted(
                    FaceAttempted(
                        faceId: faceId, userId: userId, outcome: outcome,
                        ownerUserId: owner, confidence: confidence)))
            changes.refused.append(RefusedFace(faceId: faceId, reason: outcome, ownerUserId: owner, confidence: confidence))
        }
        for faceId in faceIds.uniqued() {
            if collection.faces[faceId]?.userId == userId {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId, outcome: .unchanged)))
                continue
            }
            guard let face = collection.faces[faceId] else {
                refuse(faceId, .faceNotFound)
                continue
            }
            if let owner = face.userId, owner != userId {
                refuse(faceId, .associatedToADifferentUser, owner: owner)
                continue
            }
            let confidence = userVector.map { Similarity.confidence(face.embedding, against: $0) }
            if let confidence, confidence < threshold {
                refuse(faceId, .lowMatchConfidence, confidence: confidence)
                continue
            }
            guard held < Limits.facesPerUser else {
                // The event keeps the confidence; the client is told no more than Rekognition tells it.
                events.append(
                    .faceAttempted(
                        FaceAttempted(
                            faceId: faceId, userId: userId, outcome: .userFaceLimit,
                            confidence: confidence)))
                changes.refused.append(RefusedFace(faceId: faceId, reason: .userFaceLimit))
                continue
            }
            held += 1
            events.append(.faceAssociated(FaceAssociated(faceId: faceId, userId: userId, confidence: confidence)))
            changes.changed.append(faceId)
        }
        let status: UserStatus = changes.changed.isEmpty ? .settled(faceCount: held) : .updating
        return accept(events, .facesAssociated(changes, userStatus: status))
    }

    private func disassociateFaces(_ id: String, _ userId: String, _ faceIds: [String]) throws(Refusal) -> Decision {
        let collection = try collection(id)
        let user = try user(userId, in: collection)
        var events: [LedgerEvent] = []
        var changes = FaceChanges()
        for faceId in faceIds.uniqued() {
            guard let face = collection.faces[faceId] else {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId, outcome: .faceNotFound)))
                changes.refused.append(RefusedFace(faceId: faceId, reason: .faceNotFound))
                continue
            }
            switch face.userId {
            case nil:
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId, outcome: .unchanged)))
            case userId?:
                events.append(.faceDisassociated(FaceDisassociated(faceId: faceId, userId: userId)))
                changes.changed.append(faceId)
            case let owner?:
                events.append(
                    .faceAttempted(
                        FaceAttempted(
                            faceId: faceId, userId: userId,
                            outcome: .associatedToADifferentUser, ownerUserId: owner)))
                changes.refused.append(RefusedFace(faceId: faceId, reason: .associatedToADifferentUser, ownerUserId: owner))
            }
        }
        let remaining = user.faceCount - changes.changed.count
        let status: UserStatus = changes.changed.isEmpty ? .settled(faceCount: remaining) : .updating
        return accept(events, .facesDisassociated(changes, userStatus: status))
    }

    /// Never deletes a face that belongs to a user.
    private func deleteFaces(_ id: String, _ faceIds: [String]) throws(Refusal) -> Decision {
        let collection = try collection(id)
        var events: [LedgerEvent] = []
        var changes = FaceChanges()
        for faceId in faceIds.uniqued() {
            guard let face = collection.faces[faceId] else {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, outcome: .faceNotFound)))
                changes.refused.append(RefusedFace(faceId: faceId, reason: .faceNotFound))
                continue
            }
            if let owner = face.userId {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, outcome: .associatedToADifferentUser, ownerUserId: owner)))
                changes.refused.append(RefusedFace(faceId: faceId, reason: .associatedToADifferentUser, ownerUserId: owner))
                continue
            }
            // A face that belongs to nobody leaves with its biometrics: deleting it forgets it.
            events.append(.faceForgotten(FaceForgotten(faceId: faceId, reason: "DeleteFaces")))
            events.append(.faceDeleted(FaceDeleted(faceId: faceId)))
            changes.changed.append(faceId)
        }
        return accept(events, .facesDeleted(changes))
    }

    /// Destroys the biometrics of the named faces; they stay in the collection, with their users.
    private func forgetFaces(_ id: String, _ faceIds: [String], reason: String?) throws(Refusal) -> Decision {
        let collection = try collection(id)
        var events: [LedgerEvent] = []
        var changes = FaceChanges()
        for faceId in faceIds.uniqued() {
            guard collection.faces[faceId] != nil else {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, outcome: .faceNotFound)))
                changes.refused.append(RefusedFace(faceId: faceId, reason: .faceNotFound))
                continue
            }
            events.append(.faceForgotten(FaceForgotten(faceId: faceId, reason: reason)))
            changes.changed.append(faceId)
        }
        return accept(events, .facesForgotten(changes))
    }

    /// Faces enter the collection with their embeddings; all of a collection's have one dimension.
    private func importFaces(_ id: String, _ faces: [FaceToImport]) throws(Refusal) -> Decision {
        let collection = try collection(id)
        guard (1...Limits.facesPerImport).contains(faces.count) else {
            throw .invalidFaces("Faces must hold between 1 and \(Limits.facesPerImport) faces")
        }
        var dimension = collection.dimension
        var seen = Set<String>()
        for (index, face) in faces.enumerated() {
            guard Limits.embeddingDimensions.contains(face.embedding.count) else {
                throw .invalidFaces(
                    "Faces[\(index)].Embedding must have between \(Limits.embeddingDimensions.lowerBound) and \(Limits.embeddingDimensions.upperBound) numbers"
                )
            }
            guard face.embedding.allSatisfy(\.isFinite), Similarity.normalized(face.embedding) != nil else {
                throw .invalidFaces("Faces[\(index)].Embedding must be finite numbers with a non-zero norm")
            }
            if let expected = dimension, expected != face.embedding.count {
                throw .invalidFaces(
                    "Faces[\(index)].Embedding has \(face.embedding.count) numbers; faces of collection \(id) have \(expected)")
            }
            dimension = face.embedding.count
            guard collection.faces[face.faceId] == nil, seen.insert(face.faceId).inserted else {
                throw .invalidFaces("Faces[\(index)].FaceId \(face.faceId) already exists")
            }
        }
        let imported = faces.map { face in
            FaceImported(faceId: face.faceId, externalImageId: face.externalImageId, imageId: face.imageId, confidence: 100)
        }
        return accept(zip(imported, faces).map { .faceImported($0, embedding: $1.embedding) }, .facesImported(imported))
    }
}

extension Array where Element: Hashable {
    /// The elements in order, each once.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
