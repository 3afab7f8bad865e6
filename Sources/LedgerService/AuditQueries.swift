import Foundation
import LedgerDomain
import Postgres

/// One attempt that touched a face, as the audit reports it.
public struct FaceHistoryEntry: Sendable, Hashable {
    public var position: Int64
    public var time: Date
    public var operation: String
    public var principal: String
    public var requestId: String
    /// The user the operation named, if it named one.
    public var userId: String?
    public var outcome: FaceOutcome
    public var confidence: Double?
}

/// Audit queries, answered from the log itself: each face's events form one stream, so a face's
/// history is one range of the (collection_id, stream, version) index.
public struct AuditQueries: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// A face's history, oldest first, after stream version `afterVersion`; also for faces and
    /// collections deleted since.
    public func faceHistory(collectionId: String, faceId: String, afterVersion: Int, limit: Int) async throws
        -> [(version: Int, entry: FaceHistoryEntry)]
    {
        let rows = try await pool.query("""
            SELECT version, position, recorded_at, operation, principal, request_id, type, schema_version, data
            FROM events WHERE collection_id = $1 AND stream = $2 AND version > $3 ORDER BY version LIMIT $4
            """, [.text(collectionId), .text("face:" + faceId), .int64(Int64(afterVersion)), .int64(Int64(limit))])
        return try rows.compactMap { row in
            let event = try LedgerEvent.decode(type: try row.decode(at: 6), schemaVersion: try row.decode(at: 7),
                                               data: try row.decode(at: 8), embedding: nil)
            guard let (userId, outcome, confidence) = Self.outcome(of: event) else { return nil }
            return (try row.decode(at: 0), FaceHistoryEntry(
                position: try row.decode(at: 1), time: try row.decode(at: 2), operation: try row.decode(at: 3),
                principal: try row.decode(at: 4), requestId: try row.decode(at: 5), userId: userId, outcome: outcome,
                confidence: confidence))
        }
    }

    static func outcome(of event: LedgerEvent) -> (String?, FaceOutcome, Double?)? {
        switch event {
        case .faceImported: (nil, .imported, nil)
        case .faceAssociated(let e): (e.userId, .associated, e.confidence)
        case .faceDisassociated(let e): (e.userId, .disassociated, nil)
        case .faceAttempted(let e): (e.userId, e.outcome, e.confidence)
        case .faceDeleted: (nil, .deleted, nil)
        default: nil
        }
    }
}
