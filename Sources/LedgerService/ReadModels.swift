import Foundation
import LedgerDomain
import Postgres
import RekognitionWire

/// A collection as the read model holds it.
public struct CollectionSummary: Sendable, Hashable {
    public var collectionId: String
    public var arn: String
    public var createdAt: Date
    public var createdPosition: Int64
    public var faceCount: Int
    public var userCount: Int
}

/// A user as the read model holds it, with its status.
public struct UserSummary: Sendable, Hashable {
    public var userId: String
    public var faceCount: Int
    public var status: UserStatus
    /// The user vector (unit length), nil without faces.
    public var vector: [Float]?
}

/// A face as the read model holds it.
public struct FaceSummary: Sendable, Hashable {
    public var faceId: String
    public var userId: String?
    public var externalImageId: String?
    public var imageId: String
    public var confidence: Double
    public var embedding: [Float]
}

/// Queries on the read models. Only these answer the API's read operations.
public struct ReadModels: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    public func collection(_ id: String) async throws -> CollectionSummary? {
        try await pool.query(
            "SELECT collection_id, arn, created_at, created_position, face_count, user_count FROM rm_collections WHERE collection_id = $1",
            [.text(id)]
        ).first.map(CollectionSummary.init(row:))
    }

    /// Collections in creation order, after the one created at `afterPosition`.
    public func collections(afterPosition: Int64, limit: Int) async throws -> [CollectionSummary] {
        try await pool.query(
            """
            SELECT collection_id, arn, created_at, created_position, face_count, user_count FROM rm_collections
            WHERE created_position > $1 ORDER BY created_position LIMIT $2
            """, [.int64(afterPosition), .int64(Int64(limit))]
        ).map(CollectionSummary.init(row:))
    }

    /// Users in id order after `after`, each with its status: CREATING or UPDATING while events about
    /// it are not folded yet, else ACTIVE (with faces) or CREATED.
    public func users(in collectionId: String, after: String?, limit: Int) async throws -> [UserSummary] {
        let (rows, pending) = try await pool.run { session in
            let rows = try session.query(
                """
                SELECT user_id, face_count, user_vector FROM rm_users
                WHERE collection_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3
                """, [.text(collectionId), .text(after ?? ""), .int64(Int64(limit))])
            return (rows, try Self.pendingUsers(in: collectionId, session: session))
        }
        var users = try rows.map { row in
            let userId: String = try row.decode(at: 0)
            let faceCount: Int = try row.decode(at: 1)
            let vector = try row.decode([UInt8]?.self, at: 2).map(EmbeddingBytes.unpack)
            let status: UserStatus = pending[userId] == nil ? .settled(faceCount: faceCount) : .updating
            return UserSummary(userId: userId, faceCount: faceCount, status: status, vector: vector)
        }
        // Users created by events not folded yet are listed as CREATING.
        let listed = Set(users.map(\.userId))
        let creating = pending.filter { $0.value && !listed.contains($0.key) && $0.key > (after ?? "") }.keys
        if !creating.isEmpty {
            users += creating.map { UserSummary(userId: $0, faceCount: 0, status: .creating, vector: nil) }
            users.sort { $0.userId < $1.userId }
            users = Array(users.prefix(limit))
        }
        return users
    }

    /// Users with events after the projector's checkpoint; true when one of them created the user.
    static func pendingUsers(in collectionId: String, session: PostgresSession) throws -> [String: Bool] {
        var pending: [String: Bool] = [:]
        for row in try session.query(
            """
            SELECT data->>'userId', bool_or(type = \(EventType.userCreated.sql)) FROM events
            WHERE collection_id = $1
              AND position > coalesce((SELECT position FROM projector_checkpoints WHERE projector = $2), 0)
              AND type IN (\(EventType.sql(.userCreated, .userDeleted, .faceAssociated, .faceDisassociated)))
            GROUP BY 1
            """, [.text(collectionId), .text(Projector.name)])
        {
            pending[try row.decode(String.self, at: 0)] = try row.decode(Bool.self, at: 1)
        }
        return pending
    }

    /// Faces in id order after `after`, optionally only a user's or only the given ids.
    public func faces(in collectionId: String, userId: String?, faceIds: [String]?, after: String?, limit: Int) async throws -> [FaceSummary] {
        try await pool.query(
            """
            SELECT face_id, user_id, external_image_id, image_id, confidence, embedding FROM rm_faces
            WHERE collection_id = $1 AND face_id > $2
              AND ($3::text IS NULL OR user_id = $3)
              AND ($4::text[] IS NULL OR face_id = ANY($4))
            ORDER BY face_id LIMIT $5
            """,
            [
                .text(collectionId), .text(after ?? ""), userId.map(PostgresValue.text) ?? .null,
                faceIds.map { .textArray($0) } ?? .null, .int64(Int64(limit)),
            ]
        ).map(FaceSummary.init(row:))
    }

    /// Every face of a collection with its embedding, `pageSize` at a time, from one snapshot (a cursor
    /// in one transaction): the embedded engine's searches scan a collection of any size in memory
    /// bounded by the page.
    public func forEachFacePage(
        in collectionId: String, pageSize: Int = 5000, _ body: @escaping @Sendable ([FaceSummary]) throws -> Void
    ) async throws {
        try await pool.run { session in
            try session.transaction {
                try session.execute(
                    """
                    DECLARE faces_scan NO SCROLL CURSOR FOR
                    SELECT face_id, user_id, external_image_id, image_id, confidence, embedding FROM rm_faces
                    WHERE collection_id = $1
                    """, [.text(collectionId)])
                while true {
                    let page = try session.query("FETCH \(pageSize) FROM faces_scan").map(FaceSummary.init(row:))
                    if page.isEmpty { return }
                    try body(page)
                }
            }
        }
    }

    /// Every user of a collection with its status and vector, `pageSize` at a time in id order.
    public func forEachUserPage(in collectionId: String, pageSize: Int = 5000, _ body: ([UserSummary]) throws -> Void) async throws {
        var after: String?
        while true {
            let page = try await users(in: collectionId, after: after, limit: pageSize)
            guard let last = page.last else { return }
            try body(page)
            after = last.userId
        }
    }

    /// One user's vector: nil without faces (or while its creation is not folded yet); throws
    /// ResourceNotFoundException for a user that does not exist.
    public func userVector(in collectionId: String, userId: String) async throws -> [Float]? {
        try await pool.run { session in
            if let row = try session.query(
                "SELECT user_vector FROM rm_users WHERE collection_id = $1 AND user_id = $2",
                [.text(collectionId), .text(userId)]
            ).first {
                return try row.decode([UInt8]?.self, at: 0).map(EmbeddingBytes.unpack)
            }
            guard try Self.pendingUsers(in: collectionId, session: session)[userId] == true else {
                throw LedgerError(refusal: .userNotFound(userId))
            }
            return nil
        }
    }

    /// How far the read models trail the log: events not folded yet, and the age of the oldest of them.
    public func projectorLag() async throws -> (checkpoint: Int64, head: Int64, events: Int64, seconds: Double) {
        let row = try await pool.query(
            """
            WITH checkpoint AS (
                SELECT coalesce((SELECT position FROM projector_checkpoints WHERE projector = $1), 0) AS position)
            SELECT checkpoint.position,
                   coalesce((SELECT max(position) FROM events), 0),
                   (SELECT count(*) FROM events WHERE position > checkpoint.position),
                   coalesce(extract(epoch FROM clock_timestamp() - (SELECT min(recorded_at) FROM events
                                                                    WHERE position > checkpoint.position)), 0)::float8
            FROM checkpoint
            """, [.text(Projector.name)])[0]
        return (try row.decode(at: 0), try row.decode(at: 1), try row.decode(at: 2), try row.decode(at: 3))
    }

    /// The secret that signs pagination tokens (shared by every instance on the database).
    public func paginationSecret() async throws -> [UInt8] {
        try await pool.query("SELECT secret FROM server_secrets WHERE name = $1", ["pagination"])[0].decode([UInt8].self, at: 0)
    }
}

extension CollectionSummary {
    init(row: PostgresRow) throws {
        self.init(
            collectionId: try row.decode(at: 0), arn: try row.decode(at: 1), createdAt: try row.decode(at: 2),
            createdPosition: try row.decode(at: 3), faceCount: try row.decode(at: 4), userCount: try row.decode(at: 5))
    }
}

extension FaceSummary {
    init(row: PostgresRow) throws {
        self.init(
            faceId: try row.decode(at: 0), userId: try row.decode(at: 1), externalImageId: try row.decode(at: 2),
            imageId: try row.decode(at: 3), confidence: try row.decode(at: 4),
            embedding: EmbeddingBytes.unpack(try row.decode([UInt8].self, at: 5)))
    }
}
