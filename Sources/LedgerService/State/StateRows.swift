import EventLog
import LedgerDomain
import Postgres

/// Which set of state tables to read and write: the live read models, the fresh ones a rebuild fills
/// before it swaps them in, or the write model the command side decides against (migration 011).
/// All three have one shape. The names are constants, never input.
public enum StateTables: Sendable {
    case readModels
    case rebuild
    case writeModel

    var collections: String { prefix + "collections" + suffix }
    var users: String { prefix + "users" + suffix }
    var faces: String { prefix + "faces" + suffix }

    private var prefix: String { self == .writeModel ? "wm_" : "rm_" }
    private var suffix: String { self == .rebuild ? "_rebuild" : "" }
}

/// The rows of the state tables, from a state (whole, or loaded in part by `PartialState`).
enum StateRows {
    /// Folds events into the rows of `tables`: loads what they name, evolves it, and writes the rows
    /// they touched. Costs what the events name, whatever the length of the log.
    static func fold(_ events: [(LedgerEvent, EventContext)], into tables: StateTables, in session: PostgresSession) throws {
        guard !events.isEmpty else { return }
        var named = NamedEntities()
        for (event, context) in events { named.add(event, in: context.collectionId) }
        var state = try PartialState.load(named, from: tables, in: session)
        let touched = state.foldTracking(events)
        _ = try session.pipeline(statements(for: state, touched: touched, tables: tables))
    }

    /// Upserts and deletes that bring the rows of the touched entities in line with `state`.
    static func statements(for state: LedgerState, touched: TouchedEntities, tables: StateTables) -> [PostgresStatement] {
        var statements: [PostgresStatement] = []
        for id in touched.deletedCollections.sorted() {
            statements.append(PostgresStatement("DELETE FROM \(tables.users) WHERE collection_id = $1", [.text(id)]))
            statements.append(PostgresStatement("DELETE FROM \(tables.faces) WHERE collection_id = $1", [.text(id)]))
        }
        for id in touched.collections.sorted() {
            if let collection = state.collections[id] {
                statements.append(upsert(collection, tables: tables))
            } else {
                statements.append(PostgresStatement("DELETE FROM \(tables.collections) WHERE collection_id = $1", [.text(id)]))
            }
        }
        for key in touched.users.sorted() {
            if let collection = state.collections[key.collectionId], let user = collection.users[key.id] {
                statements.append(upsert(user, in: collection, tables: tables))
            } else {
                statements.append(PostgresStatement("DELETE FROM \(tables.users) WHERE collection_id = $1 AND user_id = $2",
                                                    [.text(key.collectionId), .text(key.id)]))
            }
        }
        for key in touched.faces.sorted() {
            if let face = state.collections[key.collectionId]?.faces[key.id] {
                statements.append(upsert(face, collectionId: key.collectionId, tables: tables))
            } else {
                statements.append(PostgresStatement("DELETE FROM \(tables.faces) WHERE collection_id = $1 AND face_id = $2",
                                                    [.text(key.collectionId), .text(key.id)]))
            }
        }
        return statements
    }

    /// Every row of `state`, for filling empty tables.
    static func statements(forAll state: LedgerState, tables: StateTables) -> [PostgresStatement] {
        var statements: [PostgresStatement] = []
        for collection in state.collections.values.sorted(by: { $0.collectionId < $1.collectionId }) {
            statements.append(upsert(collection, tables: tables))
            for user in collection.users.values.sorted(by: { $0.userId < $1.userId }) {
                statements.append(upsert(user, in: collection, tables: tables))
            }
            for face in collection.faces.values.sorted(by: { $0.faceId < $1.faceId }) {
                statements.append(upsert(face, collectionId: collection.collectionId, tables: tables))
            }
        }
        return statements
    }

    static func upsert(_ collection: FaceCollection, tables: StateTables) -> PostgresStatement {
        PostgresStatement("""
            INSERT INTO \(tables.collections) (collection_id, arn, created_at, created_position, face_count, user_count, dimension)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (collection_id) DO UPDATE SET arn = excluded.arn, created_at = excluded.created_at,
                created_position = excluded.created_position, face_count = excluded.face_count, user_count = excluded.user_count,
                dimension = excluded.dimension
            """, [.text(collection.collectionId), .text(collection.arn), .timestamp(collection.createdAt),
                  .int64(collection.createdPosition), .int64(Int64(collection.faceCount)), .int64(Int64(collection.userCount)),
                  collection.dimension.map { .int64(Int64($0)) } ?? .null])
    }

    static func upsert(_ user: User, in collection: FaceCollection, tables: StateTables) -> PostgresStatement {
        let vector = collection.userVector(user).map { EmbeddingBytes.pack($0.map(Float.init)) }
        return PostgresStatement("""
            INSERT INTO \(tables.users) (collection_id, user_id, created_at, face_count, user_vector) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (collection_id, user_id) DO UPDATE SET created_at = excluded.created_at,
                face_count = excluded.face_count, user_vector = excluded.user_vector
            """, [.text(collection.collectionId), .text(user.userId), .timestamp(user.createdAt),
                  .int64(Int64(user.faceIds.count)), vector.map(PostgresValue.bytea) ?? .null])
    }

    static func upsert(_ face: Face, collectionId: String, tables: StateTables) -> PostgresStatement {
        PostgresStatement("""
            INSERT INTO \(tables.faces) (collection_id, face_id, user_id, external_image_id, image_id, confidence, embedding, indexed_at,
                                          associated_position)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (collection_id, face_id) DO UPDATE SET user_id = excluded.user_id,
                external_image_id = excluded.external_image_id, image_id = excluded.image_id,
                confidence = excluded.confidence, embedding = excluded.embedding, indexed_at = excluded.indexed_at,
                associated_position = excluded.associated_position
            """, [.text(collectionId), .text(face.faceId), face.userId.map(PostgresValue.text) ?? .null,
                  face.externalImageId.map(PostgresValue.text) ?? .null, .text(face.imageId), .float64(face.confidence),
                  .bytea(EmbeddingBytes.pack(face.embedding)), .timestamp(face.indexedAt),
                  face.associatedPosition.map(PostgresValue.int64) ?? .null])
    }
}

/// What a run of events changed, so only those rows are written.
struct TouchedEntities {
    var deletedCollections = Set<String>()
    var collections = Set<String>()
    var users = Set<EntityKey>()
    var faces = Set<EntityKey>()
}

extension LedgerState {
    /// Folds events and says which collections, users and faces they touched.
    mutating func foldTracking(_ events: [(LedgerEvent, EventContext)]) -> TouchedEntities {
        var touched = TouchedEntities()
        for (event, context) in events {
            let id = context.collectionId
            // Before evolving: a forgotten face's owner loses its part in the user vector.
            if case .faceForgotten(let e) = event, let owner = collections[id]?.faces[e.faceId]?.userId {
                touched.users.insert(EntityKey(id, owner))
            }
            evolve(event, context)
            touched.collections.insert(id)
            switch event {
            case .collectionDeleted: touched.deletedCollections.insert(id)
            case .userCreated(let e): touched.users.insert(EntityKey(id, e.userId))
            case .userDeleted(let e): touched.users.insert(EntityKey(id, e.userId))
            case .faceImported(let e, _): touched.faces.insert(EntityKey(id, e.faceId))
            case .faceDeleted(let e): touched.faces.insert(EntityKey(id, e.faceId))
            case .faceForgotten(let e): touched.faces.insert(EntityKey(id, e.faceId))
            case .faceAssociated(let e):
                touched.faces.insert(EntityKey(id, e.faceId))
                touched.users.insert(EntityKey(id, e.userId))
            case .faceDisassociated(let e):
                touched.faces.insert(EntityKey(id, e.faceId))
                touched.users.insert(EntityKey(id, e.userId))
            default: break
            }
        }
        return touched
    }
}

extension FoldedState {
    /// Folds recorded events (the whole log, in memory: a rebuild) and says what they touched.
    mutating func foldTracking(_ events: [RecordedEvent]) throws -> TouchedEntities {
        let decoded = try events.ledgerEvents()
        if let last = events.last { position = last.position }
        eventCount += Int64(events.count)
        return state.foldTracking(decoded)
    }
}

extension [RecordedEvent] {
    /// The events that change the state, decoded, with where and when they were recorded.
    func ledgerEvents() throws -> [(LedgerEvent, EventContext)] {
        try filter { !LedgerEvent.typesWithoutStateEffect.contains($0.type) }.map { try $0.ledgerEvent() }
    }
}
