/// What one `evolve` overwrote, so that it can be put back.
///
/// The write side applies a batch's decisions to its state before the batch's transaction commits.
/// When the transaction fails, replaying these in reverse undoes the batch in O(events of the batch),
/// where refolding the log would cost O(log) — under the append lock, with every writer waiting.
public enum StateUndo: Sendable {
    /// A whole collection as it was (created or deleted by the event).
    case collection(id: String, FaceCollection?)
    /// One face as it was, and the collection's embedding dimension (set by its first face).
    case face(collectionId: String, faceId: String, Face?, dimension: Int?)
    /// One user as it was.
    case user(collectionId: String, userId: String, User?)
}

extension LedgerState {
    /// Folds `event` like `evolve` and appends to `undo` what it overwrote.
    public mutating func evolve(_ event: LedgerEvent, _ context: EventContext, recordingUndoIn undo: inout [StateUndo]) {
        undo.append(contentsOf: overwritten(by: event, in: context.collectionId))
        evolve(event, context)
    }

    /// Puts back what `undo` recorded, newest first: the state is again what it was before the first
    /// recorded `evolve`.
    public mutating func undo(_ undo: [StateUndo]) {
        for entry in undo.reversed() {
            switch entry {
            case .collection(let id, let collection):
                collections[id] = collection
            case .face(let id, let faceId, let face, let dimension):
                collections[id]?.faces[faceId] = face
                collections[id]?.dimension = dimension
            case .user(let id, let userId, let user):
                collections[id]?.users[userId] = user
            }
        }
    }

    /// The parts of the state `event` is about to change, as they are now. Copying a `Collection` or
    /// a `Face` here is cheap: they share storage until written (copy-on-write).
    private func overwritten(by event: LedgerEvent, in id: String) -> [StateUndo] {
        let collection = collections[id]
        func face(_ faceId: String) -> StateUndo {
            .face(collectionId: id, faceId: faceId, collection?.faces[faceId], dimension: collection?.dimension)
        }
        func user(_ userId: String) -> StateUndo { .user(collectionId: id, userId: userId, collection?.users[userId]) }
        switch event {
        case .commandAccepted, .commandSettled, .commandRejected, .commandReplayed, .faceAttempted, .upstreamAttempted,
            .commandAbandoned:
            return []
        case .collectionCreated, .collectionDeleted:
            return [.collection(id: id, collection)]
        case .userCreated(let e): return [user(e.userId)]
        case .userDeleted(let e): return [user(e.userId)]
        case .faceImported(let e, _): return [face(e.faceId)]
        case .faceDeleted(let e): return [face(e.faceId)]
        case .faceForgotten(let e): return [face(e.faceId)]
        case .faceAssociated(let e): return [face(e.faceId), user(e.userId)]
        case .faceDisassociated(let e): return [face(e.faceId), user(e.userId)]
        }
    }
}
