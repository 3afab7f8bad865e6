import EventLog
import Foundation
import LedgerDomain
import Postgres
import RekognitionWire

/// The `pending_commands` table: upstream commands accepted and not settled (migration 009).
///
/// Rows are inserted and deleted only inside command batches (`CommandBatch`), with the events that
/// accept and settle their commands. Leases are taken here, outside the append lock: a lease says
/// who calls the upstream for a command now, so nobody else does.
public struct PendingCommands: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    static let columns = """
        command_id, collection_id, operation, upstream_token, request_hash, recorded_request::text, body, accepted_position,
        accepted_at, attempts, principal, request_id, client_token, source_address
        """

    /// The same, with an empty body: for reading commands that are not about to be sent (a body may
    /// be an ImportFaces of 64 MiB).
    static let columnsWithoutBody = columns.replacingOccurrences(of: " body,", with: " ''::bytea AS body,")

    /// A command that no earlier pending command of its collection blocks: none shares a key with
    /// it, and neither is collection-wide.
    static let isUnblocked = """
        NOT EXISTS (
            SELECT 1 FROM pending_commands AS earlier
            WHERE earlier.collection_id = p.collection_id AND earlier.accepted_position < p.accepted_position
              AND (earlier.keys && p.keys OR '\(LedgerState.collectionKey)' = ANY(earlier.keys)
                   OR '\(LedgerState.collectionKey)' = ANY(p.keys)))
        """

    /// Takes the lease of one command, when it is pending, nobody holds its lease and no earlier
    /// command blocks it; nil otherwise.
    public func claim(_ commandId: UUID, owner: UUID, for lease: Duration) async throws -> PendingUpstreamCommand? {
        try await pool.query(
            """
            UPDATE pending_commands SET lease_owner = $2, lease_until = now() + $3 * interval '1 millisecond'
            WHERE command_id = (
                SELECT command_id FROM pending_commands AS p
                WHERE command_id = $1 AND (lease_until IS NULL OR lease_until < now()) AND \(Self.isUnblocked)
                FOR UPDATE SKIP LOCKED)
            RETURNING \(Self.columns)
            """, [.uuid(commandId), .uuid(owner), .int64(Int64(lease / .milliseconds(1)))]
        ).first.map(Self.command(from:))
    }

    /// Takes the leases of up to `limit` commands due for another attempt: accepted more than
    /// `grace` ago, their next attempt due (unless not `dueOnly`), nobody holding their lease, nothing
    /// earlier blocking them, not in `excluding`; oldest first. Another instance running the same
    /// query skips the rows this one locked.
    public func claimDue(
        owner: UUID, for lease: Duration, grace: Duration, limit: Int, dueOnly: Bool = true, excluding: Set<UUID> = []
    ) async throws -> [PendingUpstreamCommand] {
        try await pool.query(
            """
            UPDATE pending_commands SET lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond'
            WHERE command_id IN (
                SELECT command_id FROM pending_commands AS p
                WHERE accepted_at < now() - $3 * interval '1 millisecond' AND (NOT $5 OR next_attempt_at <= now())
                  AND NOT (command_id = ANY($6))
                  AND (lease_until IS NULL OR lease_until < now()) AND \(Self.isUnblocked)
                ORDER BY accepted_position LIMIT $4
                FOR UPDATE SKIP LOCKED)
            RETURNING \(Self.columns)
            """,
            [
                .uuid(owner), .int64(Int64(lease / .milliseconds(1))), .int64(Int64(grace / .milliseconds(1))), .int64(Int64(limit)), .bool(dueOnly),
                .uuidArray(Array(excluding)),
            ]
        ).map(Self.command(from:)).sorted { $0.acceptedPosition < $1.acceptedPosition }
    }

    /// Extends the lease `owner` holds on the command to `lease` from now; false when it does not hold
    /// it (any more): then it must not call the upstream for the command.
    public func renew(_ commandId: UUID, owner: UUID, for lease: Duration) async throws -> Bool {
        try await pool.run { session in
            try session.execute(
                "UPDATE pending_commands SET lease_until = now() + $3 * interval '1 millisecond' WHERE command_id = $1 AND lease_owner = $2",
                [.uuid(commandId), .uuid(owner), .int64(Int64(lease / .milliseconds(1)))]
            ).affectedRows == 1
        }
    }

    /// How many commands are pending.
    public func count() async throws -> Int {
        try await pool.query("SELECT count(*) FROM pending_commands")[0].decode(Int.self, at: 0)
    }

    /// True while the command is pending.
    public func contains(_ commandId: UUID) async throws -> Bool {
        try await !pool.query("SELECT 1 FROM pending_commands WHERE command_id = $1", [.uuid(commandId)]).isEmpty
    }

    /// How a command that is no longer pending ended: its settled response (by its token), its
    /// rejection or its abandonment (among its request's events); nil when the log has none of them.
    public func outcome(of command: PendingUpstreamCommand) async throws -> (CommandAnswer, upstreamCode: String?)? {
        if let row = try await pool.query(
            "SELECT response::text FROM command_tokens WHERE client_token = $1 AND operation = $2",
            [.text(command.upstreamToken), .text(command.operation)]
        ).first {
            return (.success(try JSONValue(parsing: Data(try row.decode(String.self, at: 0).utf8))), nil)
        }
        // A command whose token is not bound (derived): its settlement follows its last call, recorded
        // in the same append. The predicate repeats the audit index's (migration 007), so the request's
        // index range finds the call, and the settlement is a few positions after it.
        if command.upstreamToken.hasPrefix(CommandStep.derivedTokenPrefix),
            let row = try await pool.query(
                """
                SELECT data->>'response' FROM events
                WHERE command_id = $2 AND type = \(EventType.commandSettled.sql) AND position > (
                    SELECT max(position) FROM events
                    WHERE request_id = $1 AND \(AuditQueries.isEntry) AND command_id = $2
                      AND type = \(EventType.upstreamAttempted.sql))
                ORDER BY position LIMIT 1
                """, [.text(command.metadata.requestId), .uuid(command.commandId)]
            ).first
        {
            return (.success(try JSONValue(parsing: Data(try row.decode(String.self, at: 0).utf8))), nil)
        }
        guard
            let row = try await pool.query(
                """
                SELECT type, data::text FROM events
                WHERE request_id = $1 AND \(AuditQueries.isEntry) AND command_id = $2
                  AND type IN (\(EventType.sql(.commandRejected, .commandAbandoned)))
                ORDER BY position DESC LIMIT 1
                """, [.text(command.metadata.requestId), .uuid(command.commandId)]
            ).first
        else { return nil }
        let data = Data(try row.decode(String.self, at: 1).utf8)
        switch try row.decode(String.self, at: 0) {
        case EventType.commandRejected.rawValue:
            let rejected = try JSONDecoder().decode(CommandRejected.self, from: data)
            return (.failure(LedgerError(recorded: rejected.error)), rejected.upstreamCode)
        default:
            let abandoned = try JSONDecoder().decode(CommandAbandoned.self, from: data)
            return (.failure(LedgerError(.serviceUnavailable, CommandStep.abandonedPrefix + abandoned.reason)), nil)
        }
    }

    /// A pending command as `reconcile --list` shows it.
    public struct Listing: Sendable {
        public var command: PendingUpstreamCommand
        public var nextAttemptAt: Date
        public var leasedUntil: Date?
    }

    /// Every pending command, oldest first.
    public func all() async throws -> [Listing] {
        try await pool.query(
            "SELECT \(Self.columnsWithoutBody), next_attempt_at, lease_until FROM pending_commands ORDER BY accepted_position"
        ).map { row in
            Listing(
                command: try Self.command(from: row), nextAttemptAt: try row.decode(at: 14),
                leasedUntil: try row.decode(Date?.self, at: 15))
        }
    }

    // MARK: Inside a command batch's transaction

    /// The pending commands the submissions' tokens name (upstream acceptances only).
    static func byToken(for submissions: [CommandSubmission], in session: PostgresSession) throws -> [CommandBatch.TokenKey: PendingUpstreamCommand] {
        let tokens = submissions.compactMap { submission -> String? in
            if case .accept(let acceptance) = submission.step { return acceptance.upstreamToken }
            return nil
        }
        guard !tokens.isEmpty else { return [:] }
        var found: [CommandBatch.TokenKey: PendingUpstreamCommand] = [:]
        for row in try session.query(
            "SELECT \(columnsWithoutBody) FROM pending_commands WHERE upstream_token = ANY($1)",
            [.textArray(tokens)])
        {
            let command = try command(from: row)
            found[CommandBatch.TokenKey(operation: command.operation, token: command.upstreamToken)] = command
        }
        return found
    }

    /// The statement that inserts the row of a newly accepted command.
    static func inserting(_ command: PendingUpstreamCommand, keys: [String]) -> PostgresStatement {
        PostgresStatement(
            """
            INSERT INTO pending_commands (command_id, collection_id, operation, upstream_token, request_hash, recorded_request,
                body, keys, accepted_position, accepted_at, principal, request_id, client_token, source_address, next_attempt_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $10)
            """,
            [
                .uuid(command.commandId), .text(command.collectionId), .text(command.operation), .text(command.upstreamToken),
                .text(command.requestHash), .jsonb(String(decoding: command.recordedRequest.data, as: UTF8.self)),
                .bytea(command.body), .textArray(keys), .int64(command.acceptedPosition), .timestamp(command.acceptedAt),
                .text(command.metadata.principal), .text(command.metadata.requestId),
                command.metadata.clientToken.map(PostgresValue.text) ?? .null,
                command.metadata.sourceAddress.map(PostgresValue.text) ?? .null,
            ])
    }

    /// Deletes the command's row if `owner` holds its lease; false when it does not (any more).
    /// Who holds the lease of each of these commands (those with a holder), their rows locked until the
    /// transaction ends, so that no lease changes hands between this read and the batch's writes.
    static func leaseHolders(of commandIds: [UUID], in session: PostgresSession) throws -> [UUID: UUID] {
        guard !commandIds.isEmpty else { return [:] }
        var holders: [UUID: UUID] = [:]
        for row in try session.query(
            """
            SELECT command_id, lease_owner FROM pending_commands WHERE command_id = ANY($1) AND lease_owner IS NOT NULL FOR UPDATE
            """, [.uuidArray(commandIds)])
        {
            holders[try row.decode(UUID.self, at: 0)] = try row.decode(UUID.self, at: 1)
        }
        return holders
    }

    static func release(_ commandId: UUID, heldBy owner: UUID, in session: PostgresSession) throws -> Bool {
        try session.execute(
            "DELETE FROM pending_commands WHERE command_id = $1 AND lease_owner = $2",
            [.uuid(commandId), .uuid(owner)]
        ).affectedRows == 1
    }

    /// Counts an attempt, sets the next one and gives the lease up, if `owner` holds it.
    static func postpone(_ commandId: UUID, heldBy owner: UUID, until next: Date, in session: PostgresSession) throws -> Bool {
        try session.execute(
            """
            UPDATE pending_commands SET attempts = attempts + 1, next_attempt_at = $3, lease_owner = NULL, lease_until = NULL
            WHERE command_id = $1 AND lease_owner = $2
            """, [.uuid(commandId), .uuid(owner), .timestamp(next)]
        ).affectedRows == 1
    }

    static func command(from row: PostgresRow) throws -> PendingUpstreamCommand {
        let commandId: UUID = try row.decode(at: 0)
        let recorded = try JSONValue(parsing: Data(try row.decode(String.self, at: 5).utf8))
        return PendingUpstreamCommand(
            commandId: commandId, collectionId: try row.decode(at: 1), operation: try row.decode(at: 2),
            upstreamToken: try row.decode(at: 3), requestHash: try row.decode(at: 4), recordedRequest: recorded,
            body: try row.decode(at: 6), acceptedPosition: try row.decode(at: 7), acceptedAt: try row.decode(at: 8),
            attempts: Int(try row.decode(Int32.self, at: 9)),
            metadata: EventMetadata(
                principal: try row.decode(at: 10), requestId: try row.decode(at: 11),
                clientToken: try row.decode(String?.self, at: 12), operation: try row.decode(at: 2),
                sourceAddress: try row.decode(String?.self, at: 13), commandId: commandId))
    }
}
