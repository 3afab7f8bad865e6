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
/// The rule that makes a partial state sound: every named collection, user and face; a user that may
/// lose faces with all its faces (its vector sum is computed afresh from what remains, and a deletion
/// lists them); a face that may leave its owner (forgotten, deleted, moved by an upstream) with that
/// owner and all of the owner's faces. Gaining a face needs only the user's row: its count and vector
/// sum grow in place. Whatever an event touches is named by the command that decided it, or is such
/// an owner.
struct NamedEntities {
    var collections = Set<String>()
    /// Users needed as their rows hold them: count and vector sum.
    var users = Set<EntityKey>()
    /// Users needed with all their faces.
    var usersWithFaces = Set<EntityKey>()
    var faces = Set<EntityKey>()
    /// Faces needed with their owners, and the owners with all their faces.
    var facesWithOwners = Set<EntityKey>()
    /// Collections needed whole: adoption compares all of one with what the upstream holds.
    var wholeCollections = Set<String>()

    var isEmpty: Bool { collections.isEmpty && wholeCollections.isEmpty }

    /// True when a state loaded for these names holds everything `other` names.
    func covers(_ other: NamedEntities) -> Bool {
        func has(_ key: EntityKey, in keys: Set<EntityKey>...) -> Bool {
            wholeCollections.contains(key.collectionId) || keys.contains { $0.contains(key) }
        }
        return other.collections.allSatisfy { collections.contains($0) || wholeCollections.contains($0) }
            && other.wholeCollections.isSubset(of: wholeCollections)
            && other.users.allSatisfy { has($0, in: users, usersWithFaces) }
            && other.usersWithFaces.allSatisfy { has($0, in: usersWithFaces) }
            && other.faces.allSatisfy { has($0, in: faces, facesWithOwners) }
            && other.facesWithOwners.allSatisfy { has($0, in: facesWithOwners) }
    }

    /// What deciding `command` (or, `mirroring`, recording an upstream's answer to it) reads.
    mutating func add(_ command: LedgerCommand, mirroring: Bool) {
        let id = command.collectionId
        collections.insert(id)
        func keys(_ ids: [String]) -> [EntityKey] { ids.map { EntityKey(id, $0) } }
        switch command {
        case .createCollection, .deleteCollection, .indexFaces:
            break
        case .createUser(_, let userId):
            users.insert(EntityKey(id, userId))
        case .deleteUser(_, let userId):
            usersWithFaces.insert(EntityKey(id, userId))
        case .associateFaces(_, let userId, let faceIds, _):
            users.insert(EntityKey(id, userId))
            // Deciding never takes a face from its owner; an upstream's answer may have.
            if mirroring { facesWithOwners.formUnion(keys(faceIds)) } else { faces.formUnion(keys(faceIds)) }
        case .disassociateFaces(_, let userId, let faceIds):
            usersWithFaces.insert(EntityKey(id, userId))
            facesWithOwners.formUnion(keys(faceIds))
        case .deleteFaces(_, let faceIds), .forgetFaces(_, let faceIds, _):
            facesWithOwners.formUnion(keys(faceIds))
        case .importFaces(_, let faces):
            facesWithOwners.formUnion(keys(faces.map(\.faceId)))
        }
    }

    /// Every face an upstream's outcome names: mirroring it may record them.
    mutating func addFaces(namedIn outcome: CommandOutcome, in collectionId: String) {
        facesWithOwners.formUnion(outcome.faceIds.map { EntityKey(collectionId, $0) })
    }

    mutating func add(_ event: LedgerEvent, in collectionId: String) {
        collections.insert(collectionId)
        switch event {
        case .userCreated(let e): users.insert(EntityKey(collectionId, e.userId))
        case .userDeleted(let e): users.insert(EntityKey(collectionId, e.userId))
        case .faceImported(let e, _): facesWithOwners.insert(EntityKey(collectionId, e.faceId))
        case .faceDeleted(let e): facesWithOwners.insert(EntityKey(collectionId, e.faceId))
        case .faceForgotten(let e): facesWithOwners.insert(EntityKey(collectionId, e.faceId))
        case .faceAssociated(let e):
            faces.insert(EntityKey(collectionId, e.faceId))
            users.insert(EntityKey(collectionId, e.userId))
        case .faceDisassociated(let e):
            faces.insert(EntityKey(collectionId, e.faceId))
            usersWithFaces.insert(EntityKey(collectionId, e.userId))
        default:
            break
        }
    }
}
