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
    /// they touched. Costs what the events name, whatever the length of the log. `loaded`, the rows as
    /// they stand already read (by the batch that decided the events), is used when it covers them.
    static func fold(
        _ events: [(LedgerEvent, EventContext)], into tables: StateTables, startingFrom loaded: PartialState.Loaded? = nil,
        in session: PostgresSession
    ) throws {
        _ = try session.pipeline(statements(folding: events, into: tables, startingFrom: loaded, in: session))
    }

    /// What `fold` writes, for the caller to send with statements of its own: the rows are loaded
    /// (unless `loaded` covers them) and evolved here, the statements not yet sent.
    static func statements(
        folding events: [(LedgerEvent, EventContext)], into tables: StateTables, startingFrom loaded: PartialState.Loaded? = nil,
        in session: PostgresSession
    ) throws -> [PostgresStatement] {
        guard !events.isEmpty else { return [] }
        var named = NamedEntities()
        for (event, context) in events { named.add(event, in: context.collectionId) }
        var state: LedgerState
        if let loaded, loaded.covered.covers(named) {
            state = loaded.state
        } else {
            state = try PartialState.load(named, from: tables, in: session).state
        }
        let touched = state.foldTracking(events)
        return statements(for: state, touched: touched, tables: tables)
    }

    /// Upserts and deletes that bring the rows of the touched entities in line with `state`: a few
    /// statements, each for many rows.
    static func statements(for state: LedgerState, touched: TouchedEntities, tables: StateTables) -> [PostgresStatement] {
        var statements: [PostgresStatement] = []
        if !touched.deletedCollections.isEmpty {
            let ids = PostgresValue.textArray(touched.deletedCollections.sorted())
            statements.append(PostgresStatement("DELETE FROM \(tables.users) WHERE collection_id = ANY($1)", [ids]))
            statements.append(PostgresStatement("DELETE FROM \(tables.faces) WHERE collection_id = ANY($1)", [ids]))
        }
        let collections = touched.collections.sorted()
        let goneCollections = collections.filter { state.collections[$0] == nil }
        if !goneCollections.isEmpty {
            statements.append(
                PostgresStatement(
                    "DELETE FROM \(tables.collections) WHERE collection_id = ANY($1)",
                    [.textArray(goneCollections)]))
        }
        statements += upsert(collections.compactMap { state.collections[$0] }, tables: tables)
        var users: [(String, User)] = []
        var goneUsers: [EntityKey] = []
        for key in touched.users.sorted() {
            if let user = state.collections[key.collectionId]?.users[key.id] { users.append((key.collectionId, user)) } else { goneUsers.append(key) }
        }
        statements += delete(goneUsers, from: tables.users, idColumn: "user_id")
        statements += upsert(users, tables: tables)
        var faces: [(String, Face)] = []
        var goneFaces: [EntityKey] = []
        for key in touched.faces.sorted() {
            if let face = state.collections[key.collectionId]?.faces[key.id] { faces.append((key.collectionId, face)) } else { goneFaces.append(key) }
        }
        statements += delete(goneFaces, from: tables.faces, idColumn: "face_id")
        statements += upsert(faces, tables: tables)
        return statements
    }

    /// Every row of `state`, for filling fresh tables that have no rows and no indexes yet (a rebuild's:
    /// indexes built afterwards cost a fraction of indexing row by row, and nothing can conflict).
    static func inserts(forAll state: LedgerState, tables: StateTables) -> [PostgresStatement] {
        let collections = Array(state.collections.values)
        return upsert(collections, tables: tables, existing: .none)
            + upsert(collections.flatMap { c in c.users.values.map { (c.collectionId, $0) } }, tables: tables, existing: .none)
            + upsert(collections.flatMap { c in c.faces.values.map { (c.collectionId, $0) } }, tables: tables, existing: .none)
    }

    /// What an upsert does about rows already in the table.
    enum ExistingRows {
        /// A row of the same key is updated.
        case update
        /// There are none: plain inserts (which need no unique index).
        case none

        /// `clause` (an `ON CONFLICT … DO UPDATE`) when rows may exist, else nothing.
        func onConflict(_ clause: String) -> String { self == .update ? "\n" + clause : "" }
    }

    /// Rows per statement: large enough that statements do not count, small enough for any parameter.
    static let rowsPerStatement = 1000

    static func upsert(_ collections: [FaceCollection], tables: StateTables, existing: ExistingRows = .update) -> [PostgresStatement] {
        collections.chunked(rowsPerStatement).map { chunk in
            PostgresStatement(
                """
                INSERT INTO \(tables.collections) (collection_id, arn, created_at, created_position, face_count, user_count, dimension)
                SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int8[], $5::int8[], $6::int8[], $7::int8[])
                """
                    + existing.onConflict(
                        """
                        ON CONFLICT (collection_id) DO UPDATE SET arn = excluded.arn, created_at = excluded.created_at,
                            created_position = excluded.created_position, face_count = excluded.face_count,
                            user_count = excluded.user_count, dimension = excluded.dimension
                        """),
                [
                    .textArray(chunk.map(\.collectionId)), .textArray(chunk.map(\.arn)), .timestampArray(chunk.map(\.createdAt)),
                    .int64Array(chunk.map(\.createdPosition)), .int64Array(chunk.map { Int64($0.faceCount) }),
                    .int64Array(chunk.map { Int64($0.userCount) }), .int64Array(chunk.map { $0.dimension.map(Int64.init) }),
                ])
        }
    }

    static func upsert(_ users: [(collectionId: String, user: User)], tables: StateTables, existing: ExistingRows = .update) -> [PostgresStatement] {
        users.chunked(rowsPerStatement).map { chunk in
            PostgresStatement(
                """
                INSERT INTO \(tables.users) (collection_id, user_id, created_at, face_count, user_vector, vector_sum)
                SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int8[], $5::bytea[], $6::bytea[])
                """
                    + existing.onConflict(
                        """
                        ON CONFLICT (collection_id, user_id) DO UPDATE SET created_at = excluded.created_at,
                            face_count = excluded.face_count, user_vector = excluded.user_vector, vector_sum = excluded.vector_sum
                        """),
                [
                    .textArray(chunk.map(\.collectionId)), .textArray(chunk.map(\.user.userId)),
                    .timestampArray(chunk.map(\.user.createdAt)), .int64Array(chunk.map { Int64($0.user.faceCount) }),
                    .byteaArray(chunk.map { $0.user.vector.map { EmbeddingBytes.pack($0.map(Float.init)) } }),
                    .byteaArray(chunk.map { $0.user.vectorSum.map { EmbeddingBytes.pack($0) } }),
                ])
        }
    }

    static func upsert(_ faces: [(collectionId: String, face: Face)], tables: StateTables, existing: ExistingRows = .update) -> [PostgresStatement] {
        faces.chunked(rowsPerStatement).map { chunk in
            PostgresStatement(
                """
                INSERT INTO \(tables.faces) (collection_id, face_id, user_id, external_image_id, image_id, confidence, embedding,
                                             indexed_at, associated_position)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::bytea[],
                                     $8::timestamptz[], $9::int8[])
                """
                    + existing.onConflict(
                        """
                        ON CONFLICT (collection_id, face_id) DO UPDATE SET user_id = excluded.user_id,
                            external_image_id = excluded.external_image_id, image_id = excluded.image_id,
                            confidence = excluded.confidence, embedding = excluded.embedding, indexed_at = excluded.indexed_at,
                            associated_position = excluded.associated_position
                        """),
                [
                    .textArray(chunk.map(\.collectionId)), .textArray(chunk.map(\.face.faceId)), .textArray(chunk.map(\.face.userId)),
                    .textArray(chunk.map(\.face.externalImageId)), .textArray(chunk.map(\.face.imageId)),
                    .float64Array(chunk.map(\.face.confidence)), .byteaArray(chunk.map { EmbeddingBytes.pack($0.face.embedding) }),
                    .timestampArray(chunk.map(\.face.indexedAt)), .int64Array(chunk.map(\.face.associatedPosition)),
                ])
        }
    }

    static func delete(_ keys: [EntityKey], from table: String, idColumn: String) -> [PostgresStatement] {
        keys.chunked(rowsPerStatement).map { chunk in
            PostgresStatement(
                """
                DELETE FROM \(table) WHERE (collection_id, \(idColumn)) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                """, [.textArray(chunk.map(\.collectionId)), .textArray(chunk.map(\.id))])
        }
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
            // Before evolving: a face forgotten, deleted or replaced changes its owner's vector.
            let changedFace: String? =
                switch event {
                case .faceForgotten(let e): e.faceId
                case .faceDeleted(let e): e.faceId
                case .faceImported(let e, _): e.faceId
                default: nil
                }
            if let changedFace, let owner = collections[id]?.faces[changedFace]?.userId { touched.users.insert(EntityKey(id, owner)) }
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
    mutating func foldTracking(_ events: [some FoldableEvent]) throws -> TouchedEntities {
        let decoded = try events.ledgerEvents()
        if let last = events.last { position = last.position }
        eventCount += Int64(events.count)
        return state.foldTracking(decoded)
    }

    /// Folds recorded events, with no account of what they touched.
    mutating func fold(_ events: [some FoldableEvent]) throws {
        for (event, context) in try events.ledgerEvents() { state.evolve(event, context) }
        if let last = events.last { position = last.position }
        eventCount += Int64(events.count)
    }
}

extension Array where Element: FoldableEvent {
    /// The events that change the state, decoded, with where and when they were recorded.
    func ledgerEvents() throws -> [(LedgerEvent, EventContext)] {
        try filter { !LedgerEvent.typesWithoutStateEffect.contains($0.type) }.map { try $0.ledgerEvent() }
    }
}
