import Foundation
import Postgres

/// The append-only event log in PostgreSQL.
public struct EventLog: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// The channel on which every append's commit sends a wake-up notification.
    public static let notificationChannel = "faceledger_events"

    /// Appends `events` to streams of one collection, atomically, in order.
    @discardableResult
    public func append(_ events: [NewEvent], to collectionId: String) async throws -> [RecordedEvent] {
        // One statement, so one round trip: it is its own transaction.
        try await pool.run { session in try EventLog.appendRecording(events, to: collectionId, in: session) }
    }

    /// The events of one stream, oldest first, from version `fromVersion` on.
    public func readStream(_ stream: String, in collectionId: String, fromVersion: Int = 1) async throws -> [RecordedEvent] {
        try await pool.run { session in
            try session.query(
                EventLog.selectColumns + " WHERE collection_id = $1 AND stream = $2 AND version >= $3 ORDER BY version",
                [.text(collectionId), .text(stream), .int64(Int64(fromVersion))]
            ).map(RecordedEvent.init(row:))
        }
    }

    /// Up to `limit` events with a position greater than `position`, in position order.
    ///
    /// Because appends are serialised until they commit, an event is visible only after every event
    /// with a smaller position: a reader that resumes from the last position it saw skips nothing.
    public func read(after position: Int64, limit: Int = 1000) async throws -> [RecordedEvent] {
        try await pool.run { session in try EventLog.read(after: position, limit: limit, in: session) }
    }

    /// `read(after:limit:)` on a session the caller holds (inside a transaction, say).
    public static func read(after position: Int64, limit: Int, in session: PostgresSession) throws -> [RecordedEvent] {
        try session.query(
            selectColumns + " WHERE position > $1 ORDER BY position LIMIT $2",
            [.int64(position), .int64(Int64(limit))]
        ).map(RecordedEvent.init(row:))
    }

    /// `read(after:limit:in:)` with only what a fold needs of each event (`FoldEvent`).
    public static func readForFold(after position: Int64, limit: Int, in session: PostgresSession) throws -> [FoldEvent] {
        try session.query(
            """
            SELECT position, collection_id, type, schema_version, data, embedding, recorded_at FROM events
            WHERE position > $1 ORDER BY position LIMIT $2
            """,
            [.int64(position), .int64(Int64(limit))]
        ).map { row in
            FoldEvent(
                position: try row.decode(at: 0), collectionId: try row.decode(at: 1), type: try row.decode(at: 2),
                schemaVersion: try row.decode(at: 3), data: try row.decode(at: 4), embedding: try row.decode(at: 5),
                recordedAt: try row.decode(at: 6))
        }
    }

    /// The position of the last event, 0 when the log is empty.
    public func headPosition() async throws -> Int64 {
        try await pool.run { session in
            try session.query("SELECT coalesce(max(position), 0)::bigint FROM events")[0].decode(Int64.self, at: 0)
        }
    }

    static let selectColumns = """
        SELECT position, collection_id, stream, version, type, schema_version, data, embedding,
               principal, request_id, client_token, operation, source_address, command_id, recorded_at, hash
        FROM events
        """
}

extension RecordedEvent {
    init(row: PostgresRow) throws {
        self.init(
            position: try row.decode(at: 0),
            collectionId: try row.decode(at: 1),
            stream: try row.decode(at: 2),
            version: try row.decode(at: 3),
            type: try row.decode(at: 4),
            schemaVersion: try row.decode(at: 5),
            data: try row.decode(at: 6),
            embedding: try row.decode(at: 7),
            metadata: EventMetadata(
                principal: try row.decode(at: 8),
                requestId: try row.decode(at: 9),
                clientToken: try row.decode(at: 10),
                operation: try row.decode(at: 11),
                sourceAddress: try row.decode(at: 12),
                commandId: try row.decode(at: 13)),
            recordedAt: try row.decode(at: 14),
            hash: try row.decode(at: 15))
    }
}
