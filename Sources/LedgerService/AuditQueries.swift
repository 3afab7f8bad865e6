import EventLog
import Foundation
import LedgerDomain
import Postgres

/// The subject of an audit query: which index range of the log it reads.
public enum AuditSubject: Sendable, Hashable {
    /// The face's stream.
    case face(collectionId: String, faceId: String)
    /// Facts naming the user, and rejected or replayed requests naming it.
    case user(collectionId: String, userId: String)
    /// What the principal did, in one collection or everywhere.
    case principal(String, collectionId: String?)
    /// Everything recorded in the collection.
    case collection(String)
    /// Everything one request caused, or the record of its refusal or replay.
    case request(String)
    /// Every entry of the log (the change feed, `faceledger audit tail`).
    case everything
}

/// Where a page of audit entries starts and what it may contain.
public struct AuditWindow: Sendable, Hashable {
    /// Entries after this position (the last one of the previous page; 0 for the first page).
    public var afterPosition: Int64
    /// Entries recorded at or after this instant.
    public var from: Date?
    /// Entries recorded before this instant.
    public var to: Date?

    public init(afterPosition: Int64 = 0, from: Date? = nil, to: Date? = nil) {
        self.afterPosition = afterPosition
        self.from = from
        self.to = to
    }
}

/// Audit queries, answered from the log itself (not the read models) by one index range each
/// (`migrations/007_audit_indexes.sql`), oldest first: they answer for deleted users, faces and
/// collections too.
public struct AuditQueries: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// Up to `limit` entries of `subject` within `window`, oldest first.
    public func entries(_ subject: AuditSubject, window: AuditWindow, limit: Int) async throws -> [AuditEntry] {
        try await pool.run { session in try Self.entries(subject, window: window, limit: limit, in: session) }
    }

    /// `entries(_:window:limit:)` on a session the caller holds (the command line's own connection).
    public static func entries(
        _ subject: AuditSubject, window: AuditWindow, limit: Int, in session: PostgresSession
    ) throws
        -> [AuditEntry]
    {
        let (low, high) = try positions(from: window.from, to: window.to, in: session)
        guard window.afterPosition < .max else { return [] }
        let lowest = max(window.afterPosition + 1, low)
        guard lowest < high else { return [] }
        let (condition, order, parameters) = where_(subject)
        let bound = parameters.count
        // The time filter is exact on its own; the position range is what lets the index answer. (An
        // event committed after `positions` ran may lie beyond `to` while `high` is still open.)
        let rows = try session.query(
            "SELECT \(columns) FROM events WHERE \(condition) AND position >= $\(bound + 1) AND position < $\(bound + 2)"
                + " AND recorded_at < $\(bound + 3) ORDER BY \(order) LIMIT $\(bound + 4)",
            parameters + [.int64(lowest), .int64(high), .timestamp(window.to ?? .distantFuture), .int64(Int64(limit))])
        // Entries leave the database here: none before it is durable (`EventLog.awaitDurable`).
        if !rows.isEmpty { try EventLog.awaitDurable(in: session) }
        return try rows.map(AuditEntry.init(row:))
    }

    /// The predicate, order and parameters of a subject. Every predicate but the face's repeats the
    /// indexes' partial predicate word for word (`isEntry`), so the planner can use them.
    private static func where_(_ subject: AuditSubject) -> (String, String, [PostgresValue]) {
        switch subject {
        case .face(let collectionId, let faceId):
            // One stream: its version order is its position order, and every event in it is an entry.
            ("collection_id = $1 AND stream = $2", "version", [.text(collectionId), .text(StreamName.face(faceId))])
        case .user(let collectionId, let userId):
            (
                "collection_id = $1 AND coalesce(data->>'userId', data->'request'->>'UserId') = $2 AND \(isEntry)", "position",
                [.text(collectionId), .text(userId)]
            )
        case .principal(let principal, nil):
            ("principal = $1 AND \(isEntry)", "position", [.text(principal)])
        case .principal(let principal, let collectionId?):
            ("principal = $1 AND collection_id = $2 AND \(isEntry)", "position", [.text(principal), .text(collectionId)])
        case .collection(let collectionId):
            ("collection_id = $1 AND \(isEntry)", "position", [.text(collectionId)])
        case .request(let requestId):
            ("request_id = $1 AND \(isEntry)", "position", [.text(requestId)])
        case .everything:
            (isEntry, "position", [])
        }
    }

    /// Events that are audit entries: all but the envelope of an accepted command, whose facts say
    /// what it did (and carry its metadata).
    static let isEntry = "type NOT IN (\(EventType.sql(.commandAccepted, .commandSettled)))"

    static let columns = """
        position, recorded_at, collection_id, operation, principal, source_address, request_id, client_token, type, data
        """

    /// A time window as a position range [low, high): `recorded_at` never decreases with position,
    /// so the first position recorded at or after an instant bounds everything recorded since.
    static func positions(from: Date?, to: Date?, in session: PostgresSession) throws -> (Int64, Int64) {
        func first(atOrAfter instant: Date?, otherwise: Int64) throws -> Int64 {
            guard let instant else { return otherwise }
            let rows = try session.query(
                "SELECT position FROM events WHERE recorded_at >= $1 ORDER BY recorded_at, position LIMIT 1", [.timestamp(instant)])
            return try rows.first?.decode(Int64.self, at: 0) ?? Int64.max
        }
        return (try first(atOrAfter: from, otherwise: 0), try first(atOrAfter: to, otherwise: Int64.max))
    }
}
