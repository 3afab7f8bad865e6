import EventLog
import Foundation
import LedgerDomain
import Postgres

/// Incident recovery: undoes a collection's association changes since an instant with ordinary,
/// ledgered commands. History is never rewritten.
public enum RevertRun {
    /// The plan, from the log alone: the collection then and now, and the changes in between.
    public static func plan(collectionId: String, to instant: Date, principal: String?,
                            connection: PostgresConnection) async throws -> RevertPlan {
        try await connection.run { session in
            let then = try TimeTravel.collection(collectionId, asOf: instant, in: session)
            guard let now = try TimeTravel.collection(collectionId, asOf: .distantFuture, in: session) else {
                throw RebuildError(description: "collection \(collectionId) does not exist")
            }
            let changes = try session.query("""
                SELECT type, schema_version, data, principal FROM events
                WHERE collection_id = $1 AND recorded_at > $2 AND type IN ('FaceAssociated', 'FaceDisassociated')
                ORDER BY position
                """, [.text(collectionId), .timestamp(instant)]).map { row in
                (event: try LedgerEvent.decode(type: try row.decode(at: 0), schemaVersion: try row.decode(at: 1),
                                               data: try row.decode(at: 2), embedding: nil),
                 principal: try row.decode(String.self, at: 3))
            }
            return RevertPlan.plan(then: then, now: now, changes: changes, principal: principal)
        }
    }

    /// Carries the plan out through the command processor, as `operator`; returns each command's outcome.
    public static func execute(_ plan: RevertPlan, collectionId: String, operator principal: String,
                               processor: CommandProcessor) async -> [(LedgerCommand, CommandOutcome)] {
        var outcomes: [(LedgerCommand, CommandOutcome)] = []
        for command in plan.commands(collectionId: collectionId) {
            let (operation, request): (String, JSONValue)
            switch command {
            case .disassociateFaces(_, let userId, let faceIds):
                (operation, request) = ("DisassociateFaces", .object([
                    "CollectionId": .string(collectionId), "UserId": .string(userId), "FaceIds": .array(faceIds.map(JSONValue.string))]))
            case .associateFaces(_, let userId, let faceIds, let threshold):
                (operation, request) = ("AssociateFaces", .object([
                    "CollectionId": .string(collectionId), "UserId": .string(userId), "FaceIds": .array(faceIds.map(JSONValue.string)),
                    "UserMatchThreshold": .number(threshold)]))
            default:
                continue
            }
            let outcome = await processor.submit(CommandSubmission(
                operation: operation, collectionId: collectionId, recordedRequest: request, requestHash: "",
                command: .success(command),
                metadata: EventMetadata(principal: principal, requestId: UUID().uuidString, operation: operation,
                                        sourceAddress: "faceledger revert")))
            outcomes.append((command, outcome))
        }
        return outcomes
    }
}
