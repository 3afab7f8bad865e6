import Foundation

extension LedgerState {
    /// Decides a command against the state: pure, no I/O. The command side appends the events and
    /// answers with the result; a failure carries no events.
    public func decide(_ command: LedgerCommand) -> Decision {
        do {
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
                throw LedgerError.noImageModel
            case .forgetFaces(let id, let faceIds, let reason): return try forgetFaces(id, faceIds, reason: reason)
            }
        } catch let error as LedgerError {
            return .reject(error)
        } catch {
            return .reject(LedgerError(.internalServerError, "internal error"))
        }
    }

    private func collection(_ id: String) throws -> FaceCollection {
        guard let collection = collections[id] else { throw LedgerError.collectionNotFound(id) }
        return collection
    }

    private func user(_ userId: String, in collection: FaceCollection) throws -> User {
        guard let user = collection.users[userId] else { throw LedgerError.userNotFound(userId) }
        return user
    }

    private func accept(_ events: [LedgerEvent], _ response: some Encodable) throws -> Decision {
        Decision(events: events, result: .success(try JSONValue(encoding: response)))
    }

    private func createCollection(_ id: String, arn: String, tags: [String: String]) throws -> Decision {
        guard collections[id] == nil else {
            throw LedgerError(.resourceAlreadyExists, "The collection id: \(id) already exists")
        }
        return try accept([.collectionCreated(CollectionCreated(collectionId: id, arn: arn, tags: tags))],
                          CreateCollectionResponse(StatusCode: 200, CollectionArn: arn, FaceModelVersion: Limits.faceModelVersion))
    }

    private func deleteCollection(_ id: String) throws -> Decision {
        _ = try collection(id)
        return try accept([.collectionDeleted(CollectionDeleted(collectionId: id))], StatusCodeResponse(StatusCode: 200))
    }

    private func createUser(_ id: String, _ userId: String) throws -> Decision {
        let collection = try collection(id)
        guard collection.users[userId] == nil else {
            throw LedgerError(.conflict, "The user id: \(userId) already exists in the collection")
        }
        return try accept([.userCreated(UserCreated(userId: userId))], EmptyResponse())
    }

    /// Disassociates the user's faces, then deletes the user.
    private func deleteUser(_ id: String, _ userId: String) throws -> Decision {
        let user = try user(userId, in: try collection(id))
        let events = user.faceIds.map { LedgerEvent.faceDisassociated(FaceDisassociated(faceId: $0, userId: userId)) }
            + [.userDeleted(UserDeleted(userId: userId))]
        return try accept(events, EmptyResponse())
    }

    /// CONTRACT §5, AssociateFaces, rule by rule.
    private func associateFaces(_ id: String, _ userId: String, _ faceIds: [String], threshold: Double) throws -> Decision {
        let collection = try collection(id)
        let user = try user(userId, in: collection)
        guard user.faceCount < Limits.facesPerUser else {
            throw LedgerError(.serviceQuotaExceeded, "The user \(userId) already has \(Limits.facesPerUser) faces")
        }
        // Every face is scored against the user as it stood before the request, so order cannot matter.
        let userVector = user.vector
        var held = user.faceCount
        var events: [LedgerEvent] = []
        var associated: [FaceIdEntry] = []
        var unsuccessful: [UnsuccessfulFace] = []
        func refuse(_ faceId: String, _ outcome: FaceOutcome, owner: String? = nil, confidence: Double? = nil, reasons: [String]) {
            events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId, outcome: outcome,
                                                       ownerUserId: owner, confidence: confidence)))
            unsuccessful.append(UnsuccessfulFace(FaceId: faceId, UserId: owner, Confidence: confidence, Reasons: reasons))
        }
        for faceId in faceIds.uniqued() {
            if collection.faces[faceId]?.userId == userId {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId, outcome: .unchanged)))
                continue
            }
            guard let face = collection.faces[faceId] else {
                refuse(faceId, .faceNotFound, reasons: ["FACE_NOT_FOUND"])
                continue
            }
            if let owner = face.userId, owner != userId {
                refuse(faceId, .associatedToADifferentUser, owner: owner, reasons: ["ASSOCIATED_TO_A_DIFFERENT_USER"])
                continue
            }
            let confidence = userVector.map { Similarity.confidence(face.embedding, against: $0) }
            if let confidence, confidence < threshold {
                refuse(faceId, .lowMatchConfidence, confidence: confidence, reasons: ["LOW_MATCH_CONFIDENCE"])
                continue
            }
            guard held < Limits.facesPerUser else {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId, outcome: .userFaceLimit,
                                                           confidence: confidence)))
                unsuccessful.append(UnsuccessfulFace(FaceId: faceId, Reasons: []))
                continue
            }
            held += 1
            events.append(.faceAssociated(FaceAssociated(faceId: faceId, userId: userId, confidence: confidence)))
            associated.append(FaceIdEntry(FaceId: faceId))
        }
        let status: UserStatus = associated.isEmpty ? .settled(faceCount: held) : .updating
        return try accept(events, AssociateFacesResponse(
            AssociatedFaces: associated, UnsuccessfulFaceAssociations: unsuccessful, UserStatus: status))
    }

    private func disassociateFaces(_ id: String, _ userId: String, _ faceIds: [String]) throws -> Decision {
        let collection = try collection(id)
        let user = try user(userId, in: collection)
        var events: [LedgerEvent] = []
        var disassociated: [FaceIdEntry] = []
        var unsuccessful: [UnsuccessfulFace] = []
        for faceId in faceIds.uniqued() {
            guard let face = collection.faces[faceId] else {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId, outcome: .faceNotFound)))
                unsuccessful.append(UnsuccessfulFace(FaceId: faceId, Reasons: ["FACE_NOT_FOUND"]))
                continue
            }
            switch face.userId {
            case nil:
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId, outcome: .unchanged)))
            case userId?:
                events.append(.faceDisassociated(FaceDisassociated(faceId: faceId, userId: userId)))
                disassociated.append(FaceIdEntry(FaceId: faceId))
            case let owner?:
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId,
                                                           outcome: .associatedToADifferentUser, ownerUserId: owner)))
                unsuccessful.append(UnsuccessfulFace(FaceId: faceId, UserId: owner, Reasons: ["ASSOCIATED_TO_A_DIFFERENT_USER"]))
            }
        }
        let remaining = user.faceCount - disassociated.count
        let status: UserStatus = disassociated.isEmpty ? .settled(faceCount: remaining) : .updating
        return try accept(events, DisassociateFacesResponse(
            DisassociatedFaces: disassociated, UnsuccessfulFaceDisassociations: unsuccessful, UserStatus: status))
    }

    /// Never deletes a face that belongs to a user.
    private func deleteFaces(_ id: String, _ faceIds: [String]) throws -> Decision {
        let collection = try collection(id)
        var events: [LedgerEvent] = []
        var deleted: [String] = []
        var unsuccessful: [UnsuccessfulFace] = []
        for faceId in faceIds.uniqued() {
            guard let face = collection.faces[faceId] else {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, outcome: .faceNotFound)))
                unsuccessful.append(UnsuccessfulFace(FaceId: faceId, Reasons: ["FACE_NOT_FOUND"]))
                continue
            }
            if let owner = face.userId {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, outcome: .associatedToADifferentUser, ownerUserId: owner)))
                unsuccessful.append(UnsuccessfulFace(FaceId: faceId, UserId: owner, Reasons: ["ASSOCIATED_TO_AN_EXISTING_USER"]))
                continue
            }
            // A face that belongs to nobody leaves with its biometrics: deleting it forgets it.
            events.append(.faceForgotten(FaceForgotten(faceId: faceId, reason: "DeleteFaces")))
            events.append(.faceDeleted(FaceDeleted(faceId: faceId)))
            deleted.append(faceId)
        }
        return try accept(events, DeleteFacesResponse(DeletedFaces: deleted, UnsuccessfulFaceDeletions: unsuccessful))
    }

    /// Destroys the biometrics of the named faces; they stay in the collection, with their users.
    private func forgetFaces(_ id: String, _ faceIds: [String], reason: String?) throws -> Decision {
        let collection = try collection(id)
        var events: [LedgerEvent] = []
        var forgotten: [String] = []
        var unsuccessful: [UnsuccessfulFace] = []
        for faceId in faceIds.uniqued() {
            guard collection.faces[faceId] != nil else {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, outcome: .faceNotFound)))
                unsuccessful.append(UnsuccessfulFace(FaceId: faceId, Reasons: ["FACE_NOT_FOUND"]))
                continue
            }
            events.append(.faceForgotten(FaceForgotten(faceId: faceId, reason: reason)))
            forgotten.append(faceId)
        }
        return try accept(events, ForgetFacesResponse(ForgottenFaces: forgotten, UnsuccessfulFaceForgets: unsuccessful))
    }

    /// Faces enter the collection with their embeddings; all of a collection's have one dimension.
    private func importFaces(_ id: String, _ faces: [FaceToImport]) throws -> Decision {
        let collection = try collection(id)
        guard (1...Limits.facesPerImport).contains(faces.count) else {
            throw LedgerError.invalidParameter("Faces must hold between 1 and \(Limits.facesPerImport) faces")
        }
        var dimension = collection.dimension
        var seen = Set<String>()
        for (index, face) in faces.enumerated() {
            guard Limits.embeddingDimensions.contains(face.embedding.count) else {
                throw LedgerError.invalidParameter(
                    "Faces[\(index)].Embedding must have between \(Limits.embeddingDimensions.lowerBound) and \(Limits.embeddingDimensions.upperBound) numbers")
            }
            guard face.embedding.allSatisfy(\.isFinite), Similarity.normalized(face.embedding) != nil else {
                throw LedgerError.invalidParameter("Faces[\(index)].Embedding must be finite numbers with a non-zero norm")
            }
            if let expected = dimension, expected != face.embedding.count {
                throw LedgerError.invalidParameter(
                    "Faces[\(index)].Embedding has \(face.embedding.count) numbers; faces of collection \(id) have \(expected)")
            }
            dimension = face.embedding.count
            guard collection.faces[face.faceId] == nil, seen.insert(face.faceId).inserted else {
                throw LedgerError.invalidParameter("Faces[\(index)].FaceId \(face.faceId) already exists")
            }
        }
        let confidence = 100.0
        let events = faces.map { face in
            LedgerEvent.faceImported(FaceImported(faceId: face.faceId, externalImageId: face.externalImageId,
                                                  imageId: face.imageId, confidence: confidence), embedding: face.embedding)
        }
        let records = faces.map { face in
            ImportedFaceRecord(Face: .init(FaceId: face.faceId, ExternalImageId: face.externalImageId,
                                           ImageId: face.imageId, Confidence: confidence))
        }
        return try accept(events, ImportFacesResponse(FaceRecords: records))
    }
}

extension Array where Element: Hashable {
    /// The elements in order, each once.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
