import EventLog
import Foundation
import LedgerDomain
import Postgres

/// Incident recovery: undoes a collection's association changes since an instant with ordinary,
/// ledgered commands. History is never rewritten.
public enum RevertRun {
    /// The plan, from the log alone: the collection then and now, and the changes in between.
    public static func plan(
        collectionId: String, to instant: Date, principal: String?,
        connection: PostgresConnection
    ) async throws -> RevertPlan {
        try await connection.run { session in
            let then = try TimeTravel.collection(collectionId, asOf: instant, in: session)
            guard let now = try TimeTravel.collection(collectionId, asOf: .distantFuture, in: session) else {
                throw MaintenanceError(description: "collection \(collectionId) does not exist")
            }
            let changes = try session.query(
                """
                SELECT type, schema_version, data, principal FROM events
                WHERE collection_id = $1 AND recorded_at > $2 AND type IN (\(EventType.sql(.faceAssociated, .faceDisassociated)))
                ORDER BY position
                """, [.text(collectionId), .timestamp(instant)]
            ).map { row in
                (
                    event: try LedgerEvent.decode(
                        type: try row.decode(at: 0), schemaVersion: try row.decode(at: 1),
                        data: try row.decode(at: 2), embedding: nil),
                    principal: try row.decode(String.self, at: 3)
                )
            }
            return RevertPlan.plan(then: then, now: now, changes: changes, principal: principal)
        }
    }

    /// Carries the plan out through the command processor, as `operator`; returns each command's outcome.
    public static func execute(
        _ plan: RevertPlan, collectionId: String, operator principal: String,
        processor: CommandProcessor
    ) async -> [(LedgerCommand, CommandAnswer)] {
        await execute(plan, collectionId: collectionId, operator: principal) { operation, request, command, metadata in
            await processor.submit(
                CommandSubmission(
                    operation: operation, collectionId: collectionId, recordedRequest: .object(request), requestHash: "",
                    command: .success(command), metadata: metadata))
        }
    }

    /// Carries the plan out with `submit` (the command processor, or in upstream mode the upstream
    /// gateway), as `operator`; returns each command's outcome.
    public static func execute(
        _ plan: RevertPlan, collectionId: String, operator principal: String,
        submit: (_ operation: String, _ request: [String: JSONValue], LedgerCommand, EventMetadata) async -> CommandAnswer
    ) async -> [(LedgerCommand, CommandAnswer)] {
        var outcomes: [(LedgerCommand, CommandAnswer)] = []
        for command in plan.commands(collectionId: collectionId) {
            let (operation, request): (String, [String: JSONValue])
            switch command {
            case .disassociateFaces(_, let userId, let faceIds):
                (operation, request) = (
                    "DisassociateFaces",
                    [
                        "CollectionId": .string(collectionId), "UserId": .string(userId), "FaceIds": .array(faceIds.map(JSONValue.string)),
                    ]
                )
            case .associateFaces(_, let userId, let faceIds, let threshold):
                (operation, request) = (
                    "AssociateFaces",
                    [
                        "CollectionId": .string(collectionId), "UserId": .string(userId), "FaceIds": .array(faceIds.map(JSONValue.string)),
                        "UserMatchThreshold": .number(threshold),
                    ]
                )
            default:
                continue
            }
            let outcome = await submit(
                operation, request, command,
                EventMetadata(
                    principal: principal, requestId: UUID().uuidString, operation: operation,
                    sourceAddress: "faceledger revert"))
            outcomes.append((command, outcome))
        }
        return outcomes
    }

    /// True when the collection's log shows upstream mode (calls to an upstream): its commands must
    /// then be executed there, or the ledger would drift from the upstream.
    public static func isUpstreamLedger(collectionId: String, connection: PostgresConnection) async throws -> Bool {
        try await connection.query(
            "SELECT EXISTS (SELECT 1 FROM events WHERE collection_id = $1 AND type = \(EventType.upstreamAttempted.sql))", [.text(collectionId)]
        )[0].decode(Bool.self, at: 0)
    }

    /// A face the revert could not give back, and why.
    public struct NotPutBack: Sendable, Hashable {
        public var faceId: String
        public var reason: String
    }

    /// The faces that did not go back: every face of a command that failed as a whole, and each face
    /// a command answered as unsuccessful (`UnsuccessfulFaceDisassociations` / `…Associations`), with
    /// its reasons. A face is listed once, for the first command that left it behind.
    public static func facesNotPutBack(_ outcomes: [(LedgerCommand, CommandAnswer)]) -> [NotPutBack] {
        var listed: [NotPutBack] = []
        var seen: Set<String> = []
        func add(_ faceId: String, _ reason: String) {
            if seen.insert(faceId).inserted { listed.append(NotPutBack(faceId: faceId, reason: reason)) }
        }
        for (command, outcome) in outcomes {
            let (step, faceIds, member): (String, [String], String)
            switch command {
            case .disassociateFaces(_, let userId, let ids):
                (step, faceIds, member) = ("DisassociateFaces from \(userId)", ids, "UnsuccessfulFaceDisassociations")
            case .associateFaces(_, let userId, let ids, _):
                (step, faceIds, member) = ("AssociateFaces to \(userId)", ids, "UnsuccessfulFaceAssociations")
            default:
                continue
            }
            switch outcome {
            case .failure(let error):
                faceIds.forEach { add($0, "\(step) failed: \(error)") }
            case .success(let response):
                guard case .object(let fields) = response, case .array(let unsuccessful)? = fields[member] else { continue }
                for case .object(let face) in unsuccessful {
                    guard case .string(let faceId)? = face["FaceId"] else { continue }
                    var reasons: [String] = []
                    if case .array(let values)? = face["Reasons"] {
                        reasons = values.compactMap { if case .string(let reason) = $0 { reason } else { nil } }
                    }
                    var reason =
                        "\(step) unsuccessful: "
                        + (reasons.isEmpty ? "no reason given (e.g. the user's face limit)" : reasons.joined(separator: ", "))
                    if case .string(let owner)? = face["UserId"] { reason += " (held by \(owner))" }
                    add(faceId, reason)
                }
            }
        }
        return listed
    }
}
