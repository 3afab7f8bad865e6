import EventLog
import LedgerDomain
import Postgres

/// Which set of read-model tables to write: the live ones, or the fresh ones a rebuild fills
/// before it swaps them in. The names are constants, never input.
public enum ReadModelTables: Sendable {
    case live
    case rebuild

    var collections: String { self == .live ? "rm_collections" : "rm_collections_rebuild" }
    var users: String { self == .live ? "rm_users" : "rm_users_rebuild" }
    var faces: String { self == .live ? "rm_faces" : "rm_faces_rebuild" }
}

/// The rows of the read models, from the folded state.
enum ReadModelRows {
    /// Upserts and deletes that bring the rows of the touched entities in line with `state`.
    static func statements(for state: LedgerState, touched: TouchedEntities, tables: ReadModelTables) -> [PostgresStatement] {
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
    static func statements(forAll state: LedgerState, tables: ReadModelTables) -> [PostgresStatement] {
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

    static func upsert(_ collection: FaceCollection, tables: ReadModelTables) -> PostgresStatement {
        PostgresStatement("""
            INSERT INTO \(tables.collections) (collection_id, arn, created_at, created_position, face_count, user_count)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (collection_id) DO UPDATE SET arn = excluded.arn, created_at = excluded.created_at,
                created_position = excluded.created_position, face_count = excluded.face_count, user_count = excluded.user_count
            """, [.text(collection.collectionId), .text(collection.arn), .timestamp(collection.createdAt),
                  .int64(collection.createdPosition), .int64(Int64(collection.faces.count)), .int64(Int64(collection.users.count))])
    }

    static func upsert(_ user: User, in collection: FaceCollection, tables: ReadModelTables) -> PostgresStatement {
        let vector = collection.userVector(user).map { EmbeddingBytes.pack($0.map(Float.init)) }
        return PostgresStatement("""
            INSERT INTO \(tables.users) (collection_id, user_id, created_at, face_count, user_vector) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (collection_id, user_id) DO UPDATE SET created_at = excluded.created_at,
                face_count = excluded.face_count, user_vector = excluded.user_vector
            """, [.text(collection.collectionId), .text(user.userId), .timestamp(user.createdAt),
                  .int64(Int64(user.faceIds.count)), vector.map(PostgresValue.bytea) ?? .null])
    }

    static func upsert(_ face: Face, collectionId: String, tables: ReadModelTables) -> PostgresStatement {
        PostgresStatement("""
            INSERT INTO \(tables.faces) (collection_id, face_id, user_id, external_image_id, image_id, confidence, embedding, indexed_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (collection_id, face_id) DO UPDATE SET user_id = excluded.user_id,
                external_image_id = excluded.external_image_id, image_id = excluded.image_id,
                confidence = excluded.confidence, embedding = excluded.embedding, indexed_at = excluded.indexed_at
            """, [.text(collectionId), .text(face.faceId), face.userId.map(PostgresValue.text) ?? .null,
                  face.externalImageId.map(PostgresValue.text) ?? .null, .text(face.imageId), .float64(face.confidence),
                  .bytea(EmbeddingBytes.pack(face.embedding)), .timestamp(face.indexedAt)])
    }
}

/// What a run of events changed, so only those rows are written.
struct TouchedEntities {
    var deletedCollections = Set<String>()
    var collections = Set<String>()
    var users = Set<EntityKey>()
    var faces = Set<EntityKey>()
}

extension FoldedState {
    /// Folds recorded events and says which collections, users and faces they touched.
    mutating func foldTracking(_ events: [RecordedEvent]) throws -> TouchedEntities {
        var touched = TouchedEntities()
        for recorded in events {
            position = recorded.position
            eventCount += 1
            if LedgerEvent.typesWithoutStateEffect.contains(recorded.type) { continue }
            let (event, context) = try recorded.ledgerEvent()
            state.evolve(event, context)
            let id = context.collectionId
            touched.collections.insert(id)
            switch event {
            case .collectionDeleted: touched.deletedCollections.insert(id)
            case .userCreated(let e): touched.users.insert(EntityKey(id, e.userId))
            case .userDeleted(let e): touched.users.insert(EntityKey(id, e.userId))
            case .faceImported(let e, _): touched.faces.insert(EntityKey(id, e.faceId))
            case .faceDeleted(let e): touched.faces.insert(EntityKey(id, e.faceId))
            case .faceForgotten(let e):
                // Its row loses the embedding, and its user's vector loses its part.
                touched.faces.insert(EntityKey(id, e.faceId))
                if let owner = state.collections[id]?.faces[e.faceId]?.userId { touched.users.insert(EntityKey(id, owner)) }
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
