/// Upstream mode: the events that record what an upstream (Amazon Rekognition, or another FaceLedger)
/// answered to a command it executed, so that the ledger's state — and with it the read models,
/// `state --as-of`, the audit and `revert` — mirrors the upstream's.
///
/// Where the embedded engine *decides* (`decide`), a command sent upstream is *mirrored*: the upstream
/// decided, and its answer is the fact. The ledger's own view may be behind the upstream's (faces
/// indexed before the ledger was put in front of it, a change made behind its back); the events then
/// bring it in line, e.g. a face the upstream associated while the ledger thought another user held
/// it is first disassociated from that user. The events are the same types `decide` produces, so one
/// `evolve` folds both modes.
extension LedgerState {
    /// The events recording `answer`, the upstream's successful response to `command`.
    public func mirror(_ command: LedgerCommand, answer: JSONValue) -> [LedgerEvent] {
        switch command {
        case .createCollection(let id, let arn, let tags):
            return [.collectionCreated(CollectionCreated(collectionId: id, arn: answer["CollectionArn"]?.stringValue ?? arn,
                                                         tags: tags))]
        case .deleteCollection(let id):
            return [.collectionDeleted(CollectionDeleted(collectionId: id))]
        case .createUser(_, let userId):
            return [.userCreated(UserCreated(userId: userId))]
        case .deleteUser(let id, let userId):
            // The upstream disassociates the user's faces with it, as the embedded engine does.
            let faceIds = collections[id]?.users[userId]?.faceIds ?? []
            return faceIds.map { .faceDisassociated(FaceDisassociated(faceId: $0, userId: userId)) }
                + [.userDeleted(UserDeleted(userId: userId))]
        case .associateFaces(let id, let userId, let faceIds, _):
            return mirrorAssociation(in: id, userId: userId, requested: faceIds, answer: answer)
        case .disassociateFaces(let id, let userId, let faceIds):
            return mirrorDisassociation(in: id, userId: userId, requested: faceIds, answer: answer)
        case .deleteFaces(let id, let faceIds):
            return mirrorDeletion(in: id, requested: faceIds, answer: answer)
        case .importFaces(_, let faces):
            // Only a FaceLedger upstream imports: it answers the request's faces with their ids.
            let embeddings = Dictionary(faces.map { ($0.faceId, $0.embedding) }, uniquingKeysWith: { first, _ in first })
            return records(in: answer).map { face in
                .faceImported(face, embedding: embeddings[face.faceId] ?? [])
            }
        case .indexFaces:
            // An upstream's image model found these faces; it keeps their embeddings to itself.
            return records(in: answer).map { .faceImported($0, embedding: []) }
        }
    }

    private func owner(of faceId: String, in id: String) -> String? { collections[id]?.faces[faceId]?.userId }

    private func mirrorAssociation(in id: String, userId: String, requested: [String], answer: JSONValue) -> [LedgerEvent] {
        var events: [LedgerEvent] = []
        let associated = Set(answer["AssociatedFaces"]?.arrayValue.compactMap { $0["FaceId"]?.stringValue } ?? [])
        let unsuccessful = Dictionary(
            (answer["UnsuccessfulFaceAssociations"]?.arrayValue ?? []).compactMap { entry in
                entry["FaceId"]?.stringValue.map { ($0, entry) }
            }, uniquingKeysWith: { first, _ in first })
        for faceId in requested.uniqued() {
            if let entry = unsuccessful[faceId] {
                let reasons = entry["Reasons"]?.arrayValue.compactMap(\.stringValue) ?? []
                let outcome: FaceOutcome = reasons.contains("FACE_NOT_FOUND") ? .faceNotFound
                    : reasons.contains("ASSOCIATED_TO_A_DIFFERENT_USER") ? .associatedToADifferentUser
                    : reasons.contains("LOW_MATCH_CONFIDENCE") ? .lowMatchConfidence
                    : .userFaceLimit  // Rekognition's answer for faces past the user's 100: no reasons
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId, outcome: outcome,
                                                           ownerUserId: entry["UserId"]?.stringValue,
                                                           confidence: entry["Confidence"]?.doubleValue)))
            } else if associated.contains(faceId) || owner(of: faceId, in: id) != userId {
                // Associated now, or (in neither list) already this user's upstream: the ledger follows.
                if let previous = owner(of: faceId, in: id), previous != userId {
                    events.append(.faceDisassociated(FaceDisassociated(faceId: faceId, userId: previous)))
                }
                events.append(.faceAssociated(FaceAssociated(faceId: faceId, userId: userId)))
            } else {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId, outcome: .unchanged)))
            }
        }
        return events
    }

    private func mirrorDisassociation(in id: String, userId: String, requested: [String], answer: JSONValue) -> [LedgerEvent] {
        var events: [LedgerEvent] = []
        let disassociated = Set(answer["DisassociatedFaces"]?.arrayValue.compactMap { $0["FaceId"]?.stringValue } ?? [])
        let unsuccessful = Dictionary(
            (answer["UnsuccessfulFaceDisassociations"]?.arrayValue ?? []).compactMap { entry in
                entry["FaceId"]?.stringValue.map { ($0, entry) }
            }, uniquingKeysWith: { first, _ in first })
        for faceId in requested.uniqued() {
            if let entry = unsuccessful[faceId] {
                let reasons = entry["Reasons"]?.arrayValue.compactMap(\.stringValue) ?? []
                events.append(.faceAttempted(FaceAttempted(
                    faceId: faceId, userId: userId,
                    outcome: reasons.contains("FACE_NOT_FOUND") ? .faceNotFound : .associatedToADifferentUser,
                    ownerUserId: entry["UserId"]?.stringValue)))
            } else if disassociated.contains(faceId), let previous = owner(of: faceId, in: id) {
                events.append(.faceDisassociated(FaceDisassociated(faceId: faceId, userId: previous)))
            } else {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId, outcome: .unchanged)))
            }
        }
        return events
    }

    private func mirrorDeletion(in id: String, requested: [String], answer: JSONValue) -> [LedgerEvent] {
        var events: [LedgerEvent] = []
        let deleted = Set(answer["DeletedFaces"]?.arrayValue.compactMap(\.stringValue) ?? [])
        let unsuccessful = Dictionary(
            (answer["UnsuccessfulFaceDeletions"]?.arrayValue ?? []).compactMap { entry in
                entry["FaceId"]?.stringValue.map { ($0, entry) }
            }, uniquingKeysWith: { first, _ in first })
        for faceId in requested.uniqued() {
            if deleted.contains(faceId) {
                if let previous = owner(of: faceId, in: id) {
                    events.append(.faceDisassociated(FaceDisassociated(faceId: faceId, userId: previous)))
                }
                events.append(.faceDeleted(FaceDeleted(faceId: faceId)))
            } else if let entry = unsuccessful[faceId] {
                let reasons = entry["Reasons"]?.arrayValue.compactMap(\.stringValue) ?? []
                events.append(.faceAttempted(FaceAttempted(
                    faceId: faceId, outcome: reasons.contains("FACE_NOT_FOUND") ? .faceNotFound : .associatedToADifferentUser,
                    ownerUserId: entry["UserId"]?.stringValue)))
            }
        }
        return events
    }

    /// The faces of an IndexFaces or ImportFaces answer (`FaceRecords[].Face`).
    private func records(in answer: JSONValue) -> [FaceImported] {
        (answer["FaceRecords"]?.arrayValue ?? []).compactMap { record in
            guard let face = record["Face"], let faceId = face["FaceId"]?.stringValue else { return nil }
            return FaceImported(faceId: faceId, externalImageId: face["ExternalImageId"]?.stringValue,
                                imageId: face["ImageId"]?.stringValue ?? "", confidence: face["Confidence"]?.doubleValue ?? 0)
        }
    }
}

extension JSONValue {
    /// The member `key` of an object; nil for anything else or a missing member.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members[key]
    }

    public var stringValue: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }

    /// The elements of an array; empty for anything else.
    public var arrayValue: [JSONValue] {
        guard case .array(let values) = self else { return [] }
        return values
    }
}
