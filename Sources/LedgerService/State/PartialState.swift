import Foundation
import LedgerDomain
import Postgres

/// Loads the part of the ledger's state that some commands or events name (`NamedEntities`) from
/// rows that `StateRows` wrote: the write model for deciding, the read models for projecting. The
/// cost is that of the named rows, never of the log or of the collection.
///
/// Collection tags are not kept in rows (nothing decides on them); a loaded collection has none.
enum PartialState {
    static func load(_ named: NamedEntities, from tables: StateTables, in session: PostgresSession) throws -> LedgerState {
        var state = LedgerState()
        guard !named.isEmpty else { return state }
        let collectionIds = named.collections.union(named.wholeCollections)
        for row in try session.query("""
            SELECT collection_id, arn, created_at, created_position, face_count, user_count, dimension
            FROM \(tables.collections) WHERE collection_id = ANY($1)
            """, [.textArray(collectionIds.sorted())])
        {
            let id: String = try row.decode(at: 0)
            var collection = FaceCollection(collectionId: id, arn: try row.decode(at: 1), createdAt: try row.decode(at: 2),
                                            createdPosition: try row.decode(at: 3))
            collection.faceCount = try row.decode(Int.self, at: 4)
            collection.userCount = try row.decode(Int.self, at: 5)
            collection.dimension = try row.decode(Int?.self, at: 6)
            state.collections[id] = collection
        }
        var faces: [Face] = []
        var faceCollections: [String] = []
        func addFaces(_ rows: [PostgresRow]) throws {
            for row in rows {
                faceCollections.append(try row.decode(at: 0))
                faces.append(Face(faceId: try row.decode(at: 1), externalImageId: try row.decode(at: 3), imageId: try row.decode(at: 4),
                                  confidence: try row.decode(at: 5), embedding: EmbeddingBytes.unpack(try row.decode(at: 6)),
                                  userId: try row.decode(at: 2), indexedAt: try row.decode(at: 7),
                                  associatedPosition: try row.decode(at: 8)))
            }
        }
        let faceColumns = """
            f.collection_id, f.face_id, f.user_id, f.external_image_id, f.image_id, f.confidence, f.embedding, f.indexed_at,
            f.associated_position
            """
        // The named faces first: their owners are needed too.
        let namedFaces = named.faces.filter { !named.wholeCollections.contains($0.collectionId) }.sorted()
        if !namedFaces.isEmpty {
            try addFaces(session.query("""
                SELECT \(faceColumns) FROM \(tables.faces) f
                JOIN unnest($1::text[], $2::text[]) AS n(collection_id, face_id) USING (collection_id, face_id)
                """, [.textArray(namedFaces.map(\.collectionId)), .textArray(namedFaces.map(\.id))]))
        }
        var userKeys = named.users
        for (face, collectionId) in zip(faces, faceCollections) {
            if let owner = face.userId { userKeys.insert(EntityKey(collectionId, owner)) }
        }
        let users = userKeys.filter { !named.wholeCollections.contains($0.collectionId) }.sorted()
        var userRows: [PostgresRow] = []
        if !users.isEmpty {
            let keys: [PostgresValue] = [.textArray(users.map(\.collectionId)), .textArray(users.map(\.id))]
            userRows = try session.query("""
                SELECT u.collection_id, u.user_id, u.created_at FROM \(tables.users) u
                JOIN unnest($1::text[], $2::text[]) AS n(collection_id, user_id) USING (collection_id, user_id)
                """, keys)
            try addFaces(session.query("""
                SELECT \(faceColumns) FROM \(tables.faces) f
                JOIN unnest($1::text[], $2::text[]) AS n(collection_id, user_id) USING (collection_id, user_id)
                """, keys))
        }
        if !named.wholeCollections.isEmpty {
            let ids: [PostgresValue] = [.textArray(named.wholeCollections.sorted())]
            userRows += try session.query(
                "SELECT u.collection_id, u.user_id, u.created_at FROM \(tables.users) u WHERE collection_id = ANY($1)", ids)
            try addFaces(session.query("SELECT \(faceColumns) FROM \(tables.faces) f WHERE collection_id = ANY($1)", ids))
        }
        for row in userRows {
            let id: String = try row.decode(at: 0)
            let userId: String = try row.decode(at: 1)
            state.collections[id]?.users[userId] = User(userId: userId, createdAt: try row.decode(at: 2))
        }
        for (face, collectionId) in zip(faces, faceCollections) {
            state.collections[collectionId]?.faces[face.faceId] = face
        }
        // A user's faces in the order they were associated.
        let owned = zip(faces, faceCollections).filter { $0.0.userId != nil }
            .sorted { ($0.0.associatedPosition ?? 0, $0.0.faceId) < ($1.0.associatedPosition ?? 0, $1.0.faceId) }
        var seen = Set<EntityKey>()
        for (face, collectionId) in owned where seen.insert(EntityKey(collectionId, face.faceId)).inserted {
            state.collections[collectionId]?.users[face.userId!]?.faceIds.append(face.faceId)
        }
        return state
    }
}
