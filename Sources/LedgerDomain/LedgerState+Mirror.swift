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
    /// The events recording `outcome`, what the upstream's successful answer to `command` came to.
    ///
    /// A collection, user or face the upstream acted on but the ledger never saw (created before the
    /// ledger was put in front of it) is first recorded as observed, so the events fold.
    public func mirror(_ command: LedgerCommand, outcome: CommandOutcome) -> [LedgerEvent] {
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
        if case .associateFaces = command, case .facesAssociated(let changes, _) = outcome {
            for faceId in changes.changed.uniqued() where collections[id]?.faces[faceId] == nil {
                observed.append(.faceImported(FaceImported(faceId: faceId, imageId: "", confidence: 0), embedding: []))
            }
        }
        var state = self
        for event in observed { state.evolve(event, EventContext(collectionId: id, position: 0, recordedAt: Date())) }
        return observed + state.mirrorKnown(command, outcome: outcome)
    }

    private func mirrorKnown(_ command: LedgerCommand, outcome: CommandOutcome) -> [LedgerEvent] {
        switch command {
        case .createCollection(let id, let arn, let tags):
            var recordedArn = arn
            if case .collectionCreated(let answered) = outcome, !answered.isEmpty { recordedArn = answered }
            return [.collectionCreated(CollectionCreated(collectionId: id, arn: recordedArn, tags: tags))]
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
            return mirrorAssociation(in: id, userId: userId, requested: faceIds, changes: outcome.faceChanges)
        case .disassociateFaces(let id, let userId, let faceIds):
            return mirrorDisassociation(in: id, userId: userId, requested: faceIds, changes: outcome.faceChanges)
        case .deleteFaces(let id, let faceIds):
            return mirrorDeletion(in: id, requested: faceIds, changes: outcome.faceChanges)
        case .importFaces(_, let faces):
            // Only a FaceLedger upstream imports: it answers the request's faces with their ids.
            let embeddings = Dictionary(faces.map { ($0.faceId, $0.embedding) }, uniquingKeysWith: { first, _ in first })
            return outcome.importedFaces.map { face in
                .faceImported(face, embedding: embeddings[face.faceId] ?? [])
            }
        case .forgetFaces:
            return []  // never sent upstream: the ledger forgets what it holds
        case .indexFaces(let id, _):
            // An upstream's image model found these faces; it keeps their embeddings to itself. A face
            // the ledger already has (a probe's answer may name one) keeps its record and its user.
            return outcome.importedFaces.filter { collections[id]?.faces[$0.faceId] == nil }.map { .faceImported($0, embedding: []) }
        }
    }

    private func owner(of faceId: String, in id: String) -> String? { collections[id]?.faces[faceId]?.userId }

    /// What `command` touches, for ordering upstream calls: a command does not go upstream while an
    /// earlier, unsettled one shares a key with it (docs/design.md: the ordering hazard). `collection` is
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

    private func mirrorAssociation(in id: String, userId: String, requested: [String], changes: FaceChanges) -> [LedgerEvent] {
        // A face among the associated, or in neither list (already this user's upstream), is the user's
        // now: what decides the event is whether the ledger had it with the user already.
        var events: [LedgerEvent] = []
        let refused = changes.refusedByFace
        for faceId in requested.uniqued() {
            if let refusal = refused[faceId] {
                events.append(
                    .faceAttempted(
                        FaceAttempted(
                            faceId: faceId, userId: userId, outcome: refusal.reason,
                            ownerUserId: refusal.ownerUserId, confidence: refusal.confidence)))
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

    private func mirrorDisassociation(in id: String, userId: String, requested: [String], changes: FaceChanges) -> [LedgerEvent] {
        var events: [LedgerEvent] = []
        let disassociated = Set(changes.changed)
        let refused = changes.refusedByFace
        for faceId in requested.uniqued() {
            if let refusal = refused[faceId] {
                events.append(
                    .faceAttempted(
                        FaceAttempted(
                            faceId: faceId, userId: userId, outcome: refusal.reason,
                            ownerUserId: refusal.ownerUserId)))
            } else if disassociated.contains(faceId), let previous = owner(of: faceId, in: id) {
                events.append(.faceDisassociated(FaceDisassociated(faceId: faceId, userId: previous)))
            } else {
                events.append(.faceAttempted(FaceAttempted(faceId: faceId, userId: userId, outcome: .unchanged)))
            }
        }
        return events
    }

    private func mirrorDeletion(in id: String, requested: [String], changes: FaceChanges) -> [LedgerEvent] {
        var events: [LedgerEvent] = []
        let deleted = Set(changes.changed)
        let refused = changes.refusedByFace
        for faceId in requested.uniqued() {
            if deleted.contains(faceId) {
                if let previous = owner(of: faceId, in: id) {
                    events.append(.faceDisassociated(FaceDisassociated(faceId: faceId, userId: previous)))
                }
                events.append(.faceDeleted(FaceDeleted(faceId: faceId)))
            } else if let refusal = refused[faceId] {
                events.append(
                    .faceAttempted(
                        FaceAttempted(
                            faceId: faceId, outcome: refusal.reason,
                            ownerUserId: refusal.ownerUserId)))
            }
        }
        return events
    }
}

extension FaceChanges {
    /// The refused faces by id, the first entry of each.
    var refusedByFace: [String: RefusedFace] {
        Dictionary(refused.map { ($0.faceId, $0) }, uniquingKeysWith: { first, _ in first })
    }
}
