import EventLog
import Foundation
import LedgerDomain
import Postgres

/// A collection's users and their faces at a past instant, folded from the log alone (the live read
/// models are not read). Appends give `recorded_at` that never decreases along positions, so "as of
/// T" is a prefix of the collection's events.
public struct CollectionSnapshot: Sendable, Hashable, Codable {
    public struct UserFaces: Sendable, Hashable, Codable {
        public var UserId: String
        public var FaceIds: [String]
    }
    public var CollectionId: String
    public var AsOf: String
    public var Users: [UserFaces]
}

public enum TimeTravel {
    /// The collection as it stood at `instant`, or nil if it did not exist then.
    public static func collection(_ collectionId: String, asOf instant: Date, in session: PostgresSession) throws -> FaceCollection? {
        var state = LedgerState()
        var after: Int64 = 0
        while true {
            // Embeddings are not needed to say who held which face, so they are not read.
            let rows = try session.query(
                """
                SELECT position, type, schema_version, data, recorded_at FROM events
                WHERE collection_id = $1 AND position > $2 AND recorded_at <= $3 AND NOT (type = ANY($4))
                ORDER BY position LIMIT \(Biometrics.pageSize)
                """,
                [
                    .text(collectionId), .int64(after), .timestamp(instant),
                    .textArray(LedgerEvent.typesWithoutStateEffect.sorted()),
                ])
            guard !rows.isEmpty else { break }
            for row in rows {
                let event = try LedgerEvent.decode(
                    type: try row.decode(at: 1), schemaVersion: try row.decode(at: 2),
                    data: try row.decode(at: 3), embedding: nil)
                after = try row.decode(at: 0)
                state.evolve(event, EventContext(collectionId: collectionId, position: after, recordedAt: try row.decode(at: 4)))
            }
        }
        return state.collections[collectionId]
    }

    /// The users that existed at `instant`, each with the faces it held then, sorted by user id
    /// (faces in the order they were associated).
    public static func snapshot(of collection: FaceCollection, asOf label: String) -> CollectionSnapshot {
        CollectionSnapshot(
            CollectionId: collection.collectionId, AsOf: label,
            Users: collection.users.values.sorted { $0.userId < $1.userId }
                .map { CollectionSnapshot.UserFaces(UserId: $0.userId, FaceIds: $0.faceIds) })
    }
}
