import Foundation

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
    ///
    /// A collection, user or face the upstream acted on but the ledger never saw (created before the
    /// ledger was put in front of it) is first recorded as observed, so the events fold.
    public func mirror(_ command: LedgerCommand, answer: JSONValue) -> [LedgerEvent] {
        var observed: [LedgerEvent] = []
        let id = command.collectionId
        switch command {
        case .createCollection, .deleteCollection:
            break
        default:
            if collections[id] == nil {
                observed.append(.collectionCreated(CollectionCreated(collectionId: id, arn: "")))
            }
        }
        switch command {
        case .associateFaces(_, let userId, _, _), .deleteUser(_, let userId):
            if collections[id]?.users[userId] == nil { observed.append(.userCreated(UserCreated(userId: userId))) }
        default:
            break
        }
        if case .associateFaces = command {
            for faceId in (answer["AssociatedFaces"]?.arrayValue ?? []).compactMap({ $0["FaceId"]?.stringValue }).uniqued()
            where collections[id]?.faces[faceId] == nil {
                observed.append(.faceImported(FaceImported(faceId: faceId, imageId: "", confidence: 0), embedding: []))
            }
        }
        var state = self
        for event in observed { state.evolve(event, EventContext(collectionId: id, position: 0, recordedAt: Date())) }
        return observed + state.mirrorKnown(command, answer: answer)
    }

    private func mirrorKnown(_ command: LedgerCommand, answer: JSONValue) -> [LedgerEvent] {
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
        case .forgetFaces:
            return []  // never sent upstream: the ledger forgets what it holds
        case .indexFaces(let id, _):
            // An upstream's image model found these faces; it keeps their embeddings to itself. A face
            // the ledger already has (a probe's answer may name one) keeps its record and its user.
            return records(in: answer).filter { collections[id]?.faces[$0.faceId] == nil }.map { .faceImported($0, embedding: []) }
        }
    }

    private func owner(of faceId: String, in id: String) -> String? { collections[id]?.faces[faceId]?.userId }

    /// What `command` touches, for ordering upstream calls: a command does not go upstream while an
    /// earlier, unsettled one shares a key with it (DESIGN: the ordering hazard). `collection` is
    /// shared with every command of the collection; users and faces as named, plus the users whose
    /// faces a DeleteFaces removes and the faces a DeleteUser frees; IndexFaces by its ExternalImageId,
    /// which is what resolves its unknown outcomes.
    public func upstreamKeys(for command: LedgerCommand) -> [String] {
        let id = command.collectionId
        func owners(_ faceIds: [String]) -> [String] { faceIds.compactMap { owner(of: $0, in: id) }.map(StreamName.user) }
        let keys: [String]
        switch command {
        case .createCollection, .deleteCollection:
            return [Self.collectionKey]
        case .createUser(_, let userId):
            keys = [StreamName.user(userId)]
        case .deleteUser(_, let userId):
            keys = [StreamName.user(userId)] + (collections[id]?.users[userId]?.faceIds ?? []).map { StreamName.face($0) }
        case .associateFaces(_, let userId, let faceIds, _), .disassociateFaces(_, let userId, let faceIds):
            keys = [StreamName.user(userId)] + faceIds.map { StreamName.face($0) } + owners(faceIds)
        case .deleteFaces(_, let faceIds):
            keys = faceIds.map { StreamName.face($0) } + owners(faceIds)
        case .importFaces(_, let faces):
            keys = faces.filter(\.faceIdGiven).map { StreamName.face($0.faceId) }
        case .indexFaces(_, let externalImageId):
            keys = ["image:" + (externalImageId ?? "")]
        case .forgetFaces(_, let faceIds, _):
            keys = faceIds.map { StreamName.face($0) }
        }
        return keys.uniqued()
    }

    /// The key every command of a collection shares with CreateCollection and DeleteCollection.
    public static let collectionKey = "collection"

    private func mirrorAssociation(in id: String, userId: String, requested: [String], answer: JSONValue) -> [LedgerEvent] {
        // A face in AssociatedFaces, or in neither list (already this user's upstream), is the user's
        // now: what decides the event is whether the ledger had it with the user already.
        var events: [LedgerEvent] = []
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
            } else if owner(of: faceId, in: id) != userId {
                // Associated now, or (in neither list) already this user's upstream: the ledger follows.
                // (A face the ledger already has with this user is unchanged: recording the association
                // again would list the face twice among the user's.)
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
