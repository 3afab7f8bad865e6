import EventLog
import Foundation
import LedgerDomain
import Metrics
import Postgres

/// The body of one command batch's transaction, for one collection: take the append lock, catch the
/// write side's state up with the log, answer idempotent retries, decide each command against the
/// state as the previous ones left it, append the events and bind the tokens.
///
/// Decisions are applied to the state in place (copying a large state per batch would cost more than
/// the batch), and what they overwrite is recorded in `undo`: when the transaction does not commit,
/// the caller puts it back, in O(batch).
enum CommandBatch {
    /// The most embedding bytes one `append_events()` call carries. A batch with more is appended in
    /// several calls within its transaction, so that no parameter comes near PostgreSQL's 1 GiB field
    /// limit and the server never holds one huge array at once.
    static let maxAppendBytes = 16 << 20

    /// What a batch's transaction came to, once it commits.
    struct Result {
        var outcomes: [CommandOutcome]
        /// The batch's last event and how many it appended; nil when it appended none.
        var appended: (lastPosition: Int64, count: Int)?
    }

    /// Runs the batch inside the caller's transaction. The state's position is left where catch-up
    /// put it: the caller moves it past the batch's events once the transaction has committed.
    static func run(
        _ submissions: [CommandSubmission], collectionId: String, worker: WorkerState, undo: inout [StateUndo],
        in session: PostgresSession
    ) throws -> Result {
        try session.query("SELECT pg_advisory_xact_lock($1)", [.int64(EventLog.appendLockKey)])
        try worker.catchUp(in: session)
        let foldedPosition = worker.folded.position
        var tokens = try storedTokens(for: submissions, collectionId: collectionId, in: session)

        var outcomes: [CommandOutcome] = []
        var events: [NewEvent] = []
        var newTokens: [NewToken] = []
        for submission in submissions {
            var metadata = submission.metadata
            metadata.commandId = UUID()
            func record(_ recorded: [LedgerEvent]) throws {
                for event in recorded {
                    let encoded = try event.encoded()
                    events.append(NewEvent(stream: encoded.stream, type: encoded.type, schemaVersion: encoded.schemaVersion,
                                           data: encoded.data, embedding: encoded.embedding, metadata: metadata))
                }
            }
            func reject(_ error: LedgerError) throws {
                try record([.commandRejected(CommandRejected(request: submission.recordedRequest, error: error))])
                outcomes.append(.failure(error))
            }

            // A token is bound per operation, across collections: the stored request hash covers the
            // CollectionId, so the same token with another collection is a mismatch.
            let key = metadata.clientToken.map { TokenKey(operation: submission.operation, token: $0) }
            if let key, let stored = tokens[key] {
                if stored.requestHash == submission.requestHash {
                    // The stored response; nothing changes, but who retried is on record.
                    try record([.commandReplayed(CommandReplayed(request: submission.recordedRequest,
                                                                 requestHash: submission.requestHash, replayOf: stored.position))])
                    outcomes.append(.success(stored.response))
                    Counter(label: "faceledger_idempotent_replays_total").increment()
                } else {
                    try reject(LedgerError(.idempotentParameterMismatch,
                        "ClientRequestToken \(key.token) was already used with different parameters"))
                }
                continue
            }
            let command: LedgerCommand
            switch submission.command {
            case .failure(let error):
                try reject(error)
                continue
            case .success(let validated):
                command = validated
            }
            let decision = worker.folded.state.decide(command)
            switch decision.result {
            case .failure(let error):
                try reject(error)
            case .success(let response):
                try record([.commandAccepted(CommandAccepted(request: submission.recordedRequest))] + decision.events)
                try record([.commandSettled(CommandSettled(response: response, requestHash: submission.requestHash))])
                for event in decision.events {
                    // Positions and times are known only after the append; decisions do not depend on them,
                    // so the write side's state carries the decision's (the read models carry the log's).
                    worker.folded.state.evolve(
                        event, EventContext(collectionId: collectionId, position: foldedPosition, recordedAt: Date()),
                        recordingUndoIn: &undo)
                }
                if let key {
                    tokens[key] = StoredToken(requestHash: submission.requestHash, response: response, position: nil)
                    newTokens.append(NewToken(key: key, requestHash: submission.requestHash, response: response,
                                              settledIndex: events.count - 1))
                }
                outcomes.append(.success(response))
            }
        }

        guard !events.isEmpty else { return Result(outcomes: outcomes) }
        var recorded: [RecordedEvent] = []
        for chunk in chunked(events) {
            recorded += try EventLog.append(Array(chunk), to: collectionId, expecting: [:], in: session)
        }
        try bind(newTokens, collectionId: collectionId, recorded: recorded, in: session)
        return Result(outcomes: outcomes, appended: (recorded.last!.position, recorded.count))
    }

    /// Splits events into runs of at most `maxAppendBytes` embedding bytes (a larger single event
    /// goes alone), keeping their order.
    static func chunked(_ events: [NewEvent]) -> [ArraySlice<NewEvent>] {
        var chunks: [ArraySlice<NewEvent>] = []
        var start = events.startIndex
        var bytes = 0
        for index in events.indices {
            let size = events[index].embedding?.count ?? 0
            if index > start && bytes + size > maxAppendBytes {
                chunks.append(events[start..<index])
                start = index
                bytes = 0
            }
            bytes += size
        }
        chunks.append(events[start...])
        return chunks
    }

    // MARK: Idempotency tokens

    struct TokenKey: Hashable {
        let operation: String
        let token: String
    }

    struct StoredToken {
        let requestHash: String
        let response: JSONValue
        /// Where the command settled; nil for a command of the same batch (not appended yet).
        let position: Int64?
    }

    struct NewToken {
        let key: TokenKey
        let requestHash: String
        let response: JSONValue
        /// Index, among the batch's events, of the command's CommandSettled event.
        let settledIndex: Int
    }

    /// The bound tokens that the submissions name, in any collection. A log written before tokens
    /// were bound across collections may hold one token in several; then this collection's wins
    /// (it is read last), so a true retry still replays.
    private static func storedTokens(
        for submissions: [CommandSubmission], collectionId: String, in session: PostgresSession
    ) throws -> [TokenKey: StoredToken] {
        let requested = submissions.compactMap(\.metadata.clientToken)
        guard !requested.isEmpty else { return [:] }
        var tokens: [TokenKey: StoredToken] = [:]
        for row in try session.query(
            """
            SELECT operation, client_token, request_hash, response, position FROM command_tokens
            WHERE client_token = ANY($1) ORDER BY collection_id = $2
            """,
            [.textArray(requested), .text(collectionId)])
        {
            // Parsed as JSONValue itself, so whole-number floats replay as floats (`100.0`), as first answered.
            let response = try JSONValue(parsing: Data(try row.decode(String.self, at: 3).utf8))
            tokens[TokenKey(operation: try row.decode(at: 0), token: try row.decode(at: 1))] =
                StoredToken(requestHash: try row.decode(at: 2), response: response, position: try row.decode(Int64.self, at: 4))
        }
        return tokens
    }

    private static func bind(_ tokens: [NewToken], collectionId: String, recorded: [RecordedEvent], in session: PostgresSession) throws {
        guard !tokens.isEmpty else { return }
        try session.query("""
            INSERT INTO command_tokens (collection_id, operation, client_token, request_hash, response, position, recorded_at)
            SELECT $1, t.operation, t.token, t.hash, t.response, t.position, $7
            FROM unnest($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::int8[]) AS t(operation, token, hash, response, position)
            """, [
                .text(collectionId),
                .textArray(tokens.map(\.key.operation)),
                .textArray(tokens.map(\.key.token)),
                .textArray(tokens.map(\.requestHash)),
                .jsonbArray(tokens.map { String(decoding: $0.response.data, as: UTF8.self) }),
                .int64Array(tokens.map { recorded[$0.settledIndex].position }),
                .timestamp(recorded[0].recordedAt),
            ])
    }
}
