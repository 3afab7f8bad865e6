import LedgerDomain

/// A user or face of a collection.
struct EntityKey: Hashable, Comparable {
    let collectionId: String
    let id: String
    init(_ collectionId: String, _ id: String) {
        self.collectionId = collectionId
        self.id = id
    }
    static func < (a: EntityKey, b: EntityKey) -> Bool { (a.collectionId, a.id) < (b.collectionId, b.id) }
}

/// The collections, users and faces that some commands or events name: what `PartialState` loads so
/// that `decide` and `evolve` see them as they would in the whole state.
///
/// The rule that makes a partial state sound: every named collection; every named user with all its
/// faces (its count and vector depend on them); every named face with its owner and all of the
/// owner's faces (a face that changes hands, is forgotten or deleted changes its owner too). Whatever
/// an event touches is named by the command that decided it, or is such an owner.
struct NamedEntities {
    var collections = Set<String>()
    var users = Set<EntityKey>()
    var faces = Set<EntityKey>()
    /// Collections needed whole: adoption compares all of one with what the upstream holds.
    var wholeCollections = Set<String>()

    var isEmpty: Bool { collections.isEmpty && wholeCollections.isEmpty }

    mutating func add(_ command: LedgerCommand) {
        let id = command.collectionId
        collections.insert(id)
        switch command {
        case .createCollection, .deleteCollection, .indexFaces:
            break
        case .createUser(_, let userId), .deleteUser(_, let userId):
            users.insert(EntityKey(id, userId))
        case .associateFaces(_, let userId, let faceIds, _), .disassociateFaces(_, let userId, let faceIds):
            users.insert(EntityKey(id, userId))
            addFaces(faceIds, in: id)
        case .deleteFaces(_, let faceIds), .forgetFaces(_, let faceIds, _):
            addFaces(faceIds, in: id)
        case .importFaces(_, let faces):
            addFaces(faces.map(\.faceId), in: id)
        }
    }

    /// Every face an upstream's answer names (`FaceId` anywhere in it): mirroring it may record them.
    mutating func addFaces(namedIn answer: JSONValue, in collectionId: String) {
        func walk(_ value: JSONValue) {
            switch value {
            case .object(let members):
                for (key, member) in members {
                    if key == "FaceId", let faceId = member.stringValue { faces.insert(EntityKey(collectionId, faceId)) } else { walk(member) }
                }
            case .array(let values):
                values.forEach(walk)
            default:
                break
            }
        }
        walk(answer)
    }

    mutating func add(_ event: LedgerEvent, in collectionId: String) {
        collections.insert(collectionId)
        switch event {
        case .userCreated(let e): users.insert(EntityKey(collectionId, e.userId))
        case .userDeleted(let e): users.insert(EntityKey(collectionId, e.userId))
        case .faceImported(let e, _): faces.insert(EntityKey(collectionId, e.faceId))
        case .faceDeleted(let e): faces.insert(EntityKey(collectionId, e.faceId))
        case .faceForgotten(let e): faces.insert(EntityKey(collectionId, e.faceId))
        case .faceAssociated(let e):
            faces.insert(EntityKey(collectionId, e.faceId))
            users.insert(EntityKey(collectionId, e.userId))
        case .faceDisassociated(let e):
            faces.insert(EntityKey(collectionId, e.faceId))
            users.insert(EntityKey(collectionId, e.userId))
        default:
            break
        }
    }

    private mutating func addFaces(_ faceIds: [String], in collectionId: String) {
        for faceId in faceIds { faces.insert(EntityKey(collectionId, faceId)) }
    }
}
