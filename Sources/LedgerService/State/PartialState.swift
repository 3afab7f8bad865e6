import Foundation
import LedgerDomain
import Postgres

/// Loads the part of the ledger's state that some commands or events name (`NamedEntities`) from
/// rows that `StateRows` wrote: the write model for deciding, the read models for projecting. The
/// cost is that of the named rows, never of the log or of the collection.
///
/// Collection tags are not kept in rows (nothing decides on them); a loaded collection has none.
enum PartialState {
    /// A state loaded in part, and what it holds complete: the entities asked for, plus the owners of
    /// the named faces (loaded with their faces too).
    struct Loaded {
        var state: LedgerState
        var covered: NamedEntities
    }

    /// Loads in at most two round trips: first everything named, then, when faces named with their
    /// owners have owners not loaded yet, those owners with their faces.
    static func load(_ named: NamedEntities, from tables: StateTables, in session: PostgresSession) throws -> Loaded {
        try load(named, from: tables, after: [], in: session).loaded
    }

    /// `load`, with statements of the caller's sent ahead of the lookups in their first round trip (the
    /// lookups run after them: under a lock they take, say); returns their results too.
    static func load(
        _ named: NamedEntities, from tables: StateTables, after first: [PostgresStatement], in session: PostgresSession
    ) throws -> (loaded: Loaded, first: [PostgresResult]) {
        var state = LedgerState()
        guard !named.isEmpty else { return (Loaded(state: state, covered: named), try session.pipeline(first)) }
        let rows = Rows(tables: tables)
        func outsideWhole(_ keys: Set<EntityKey>) -> Set<EntityKey> { keys.filter { !named.wholeCollections.contains($0.collectionId) } }
        let namedFaces = outsideWhole(named.faces.union(named.facesWithOwners))
        var withFaces = outsideWhole(named.usersWithFaces)
        var users = outsideWhole(named.users).union(withFaces)

        // 1. Everything named.
        var statements = [rows.collections(named.collections.union(named.wholeCollections))]
        if !namedFaces.isEmpty { statements.append(rows.faces(namedFaces)) }
        if !users.isEmpty { statements.append(rows.users(users)) }
        if !withFaces.isEmpty { statements.append(rows.faces(ownedBy: withFaces)) }
        if !named.wholeCollections.isEmpty {
            statements += [rows.users(ofCollections: named.wholeCollections), rows.faces(ofCollections: named.wholeCollections)]
        }
        let sent = try session.pipeline(first + statements)
        var results = sent.dropFirst(first.count).makeIterator()
        for row in results.next()!.rows {
            let id: String = try row.decode(at: 0)
            var collection = FaceCollection(
                collectionId: id, arn: try row.decode(at: 1), createdAt: try row.decode(at: 2),
                createdPosition: try row.decode(at: 3))
            collection.faceCount = try row.decode(Int.self, at: 4)
            collection.userCount = try row.decode(Int.self, at: 5)
            collection.dimension = try row.decode(Int?.self, at: 6)
            state.collections[id] = collection
        }
        var faces: [EntityKey: Face] = [:]
        var userRows: [PostgresRow] = []
        func addFaces(_ rows: [PostgresRow], keeping wanted: (EntityKey, Face) -> Bool = { _, _ in true }) throws {
            for row in rows {
                let face = Face(
                    faceId: try row.decode(at: 1), externalImageId: try row.decode(at: 3), imageId: try row.decode(at: 4),
                    confidence: try row.decode(at: 5), embedding: EmbeddingBytes.unpack(try row.decode(at: 6)),
                    userId: try row.decode(at: 2), indexedAt: try row.decode(at: 7),
                    associatedPosition: try row.decode(at: 8))
                let key = EntityKey(try row.decode(at: 0), face.faceId)
                if wanted(key, face) { faces[key] = face }
            }
        }
        func addOwnedFaces(_ rows: [PostgresRow], of owners: Set<EntityKey>) throws {
            try addFaces(rows, keeping: { key, face in owners.contains(EntityKey(key.collectionId, face.userId!)) })
        }
        if !namedFaces.isEmpty { try addFaces(results.next()!.rows, keeping: { key, _ in namedFaces.contains(key) }) }
        if !users.isEmpty { userRows += results.next()!.rows }
        if !withFaces.isEmpty { try addOwnedFaces(results.next()!.rows, of: withFaces) }
        if !named.wholeCollections.isEmpty {
            userRows += results.next()!.rows
            try addFaces(results.next()!.rows)
        }

        // 2. The owners of the faces named with theirs, with all their faces.
        var covered = named
        for key in named.facesWithOwners {
            if let owner = faces[key]?.userId { covered.usersWithFaces.insert(EntityKey(key.collectionId, owner)) }
        }
        let owners = outsideWhole(covered.usersWithFaces).subtracting(withFaces)
        if !owners.isEmpty {
            let newUsers = owners.subtracting(users)
            let more = try session.pipeline((newUsers.isEmpty ? [] : [rows.users(newUsers)]) + [rows.faces(ownedBy: owners)])
            if !newUsers.isEmpty { userRows += more[0].rows }
            try addOwnedFaces(more[more.count - 1].rows, of: owners)
            users.formUnion(owners)
            withFaces.formUnion(owners)
        }

        for row in userRows {
            let id: String = try row.decode(at: 0)
            let userId: String = try row.decode(at: 1)
            guard named.wholeCollections.contains(id) || users.contains(EntityKey(id, userId)) else { continue }
            state.collections[id]?.users[userId] = User(
                userId: userId, createdAt: try row.decode(at: 2), faceCount: try row.decode(Int.self, at: 3),
                vectorSum: try row.decode([UInt8]?.self, at: 4).map(EmbeddingBytes.unpackDoubles))
        }
        for (key, face) in faces {
            state.collections[key.collectionId]?.faces[face.faceId] = face
        }
        // The faces of the users loaded with them, in the order they were associated.
        let owned = faces.filter { key, face in
            guard let owner = face.userId else { return false }
            return named.wholeCollections.contains(key.collectionId) || withFaces.contains(EntityKey(key.collectionId, owner))
        }.sorted { ($0.value.associatedPosition ?? 0, $0.key) < ($1.value.associatedPosition ?? 0, $1.key) }
        for (key, face) in owned {
            state.collections[key.collectionId]?.users[face.userId!]?.faceIds.append(face.faceId)
        }
        return (Loaded(state: state, covered: covered), Array(sent.prefix(first.count)))
    }

    /// The statements that read state rows.
    private struct Rows {
        let tables: StateTables

        private static let userColumns = "collection_id, user_id, created_at, face_count, vector_sum"
        private static let faceColumns = """
            collection_id, face_id, user_id, external_image_id, image_id, confidence, embedding, indexed_at, associated_position
            """

        /// The rows of `table` whose (`collection_id`, `column`) is one of `keys`, looked up one key at a
        /// time: a nested loop over the keys with the table's index inside, whatever the statistics say.
        /// (Matched with `= ANY` on each column instead, a lookup of many keys on a table whose statistics
        /// were taken while it was small was planned as a read of the whole collection, filtered: cheap
        /// then, and then kept as the table grew. `OFFSET 0` keeps the planner from turning the loop into
        /// a join that reads the whole table for the same reason.)
        private func byKeys(_ columns: String, from table: String, _ column: String, _ keys: Set<EntityKey>) -> PostgresStatement {
            let keys = keys.sorted()
            return PostgresStatement(
                """
                SELECT r.* FROM unnest($1::text[], $2::text[]) AS k(collection_id, id)
                CROSS JOIN LATERAL (
                    SELECT \(columns) FROM \(table) AS t WHERE t.collection_id = k.collection_id AND t.\(column) = k.id OFFSET 0
                ) AS r
                """, [.textArray(keys.map(\.collectionId)), .textArray(keys.map(\.id))])
        }

        func collections(_ ids: Set<String>) -> PostgresStatement {
            PostgresStatement(
                """
                SELECT collection_id, arn, created_at, created_position, face_count, user_count, dimension
                FROM \(tables.collections) WHERE collection_id = ANY($1)
                """, [.textArray(ids.sorted())])
        }

        func users(_ keys: Set<EntityKey>) -> PostgresStatement {
            byKeys(Self.userColumns, from: tables.users, "user_id", keys)
        }

        func users(ofCollections ids: Set<String>) -> PostgresStatement {
            PostgresStatement("SELECT \(Self.userColumns) FROM \(tables.users) WHERE collection_id = ANY($1)", [.textArray(ids.sorted())])
        }

        func faces(_ keys: Set<EntityKey>) -> PostgresStatement {
            byKeys(Self.faceColumns, from: tables.faces, "face_id", keys)
        }

        func faces(ownedBy owners: Set<EntityKey>) -> PostgresStatement {
            byKeys(Self.faceColumns, from: tables.faces, "user_id", owners)
        }

        func faces(ofCollections ids: Set<String>) -> PostgresStatement {
            PostgresStatement("SELECT \(Self.faceColumns) FROM \(tables.faces) WHERE collection_id = ANY($1)", [.textArray(ids.sorted())])
        }
    }
}
