import EventLog
import Foundation
import LedgerDomain
import Metrics
import Postgres

/// The body of one command batch's transaction, for one collection: take the append lock, load the
/// part of the write model the batch's commands name, answer idempotent retries, decide each command
/// against the state as the previous ones left it (or, in upstream mode, take its step: accept,
/// settle, retry later, abandon, adopt), append the events, fold them into the write model and bind
/// the tokens.
///
/// Nothing outlives the transaction but the rows it wrote: the state is loaded for the batch and
/// dropped with it, so a batch that does not commit leaves nothing to undo, and neither start-up nor a
/// batch costs more as the log grows. The deciding itself is `BatchDecision`, pure; this is its shell.
enum CommandBatch {
    /// The most embedding bytes one `append_events()` call carries. A batch with more is appended in
    /// several calls within its transaction, so that no parameter comes near PostgreSQL's 1 GiB field
    /// limit and the server never holds one huge array at once.
    static let maxAppendBytes = 16 << 20

    /// What a batch's transaction came to, once it commits.
    struct Result {
        var outcomes: [StepOutcome]
        /// The batch's last event and how many it appended; nil when it appended none.
        var appended: (lastPosition: Int64, count: Int)?
        /// What follows from the events, not yet sent: the caller sends it with its `COMMIT`
        /// (`PostgresSession.transaction(_:committingWith:)`), the outcomes above hold only if it commits.
        var finishing: [PostgresStatement] = []
    }

    /// The batch's events as the log takes them: embeddings sealed under data keys of their own, and
    /// what that does to `face_keys`.
    struct Encoded {
        var events: [NewEvent] = []
        /// What the batch does to `face_keys`, in the order of its events (a face deleted and imported
        /// again with its id in one batch keeps its new key).
        var keyChanges: [KeyChange] = []

        enum KeyChange {
            case store(Biometrics.Sealed, faceId: String)
            case destroy(faceId: String)
            case destroyCollection
        }

        init(_ planned: [(event: LedgerEvent, metadata: EventMetadata)], collectionId: String, biometrics: Biometrics) throws {
            for (planned, metadata) in planned {
                var event = planned
                var sealedEmbedding: [UInt8]?
                switch event {
                case .faceImported(var face, let embedding) where !embedding.isEmpty:
                    // The embedding goes into the log encrypted under a data key of its own, named in the payload.
                    let sealed = try biometrics.seal(EmbeddingBytes.pack(embedding), collectionId: collectionId, faceId: face.faceId)
                    face.keyId = sealed.keyId.uuidString.lowercased()
                    event = .faceImported(face, embedding: [])
                    sealedEmbedding = sealed.embedding
                    keyChanges.append(.store(sealed, faceId: face.faceId))
                case .faceForgotten(let face):
                    keyChanges.append(.destroy(faceId: face.faceId))
                case .faceDeleted(let face):
                    // A deleted face's biometrics go with it, however it was deleted (upstream, adopted).
                    keyChanges.append(.destroy(faceId: face.faceId))
                case .collectionDeleted:
                    keyChanges.append(.destroyCollection)
                default:
                    break
                }
                var encoded = try event.encoded()
                if let sealedEmbedding { encoded.embedding = sealedEmbedding }
                events.append(
                    NewEvent(
                        stream: encoded.stream, type: encoded.type, schemaVersion: encoded.schemaVersion,
                        data: encoded.data, embedding: encoded.embedding, metadata: metadata))
            }
        }
    }

    /// Runs the batch inside the caller's transaction: reads what the batch needs, decides it
    /// (`BatchDecision`, pure), appends its events, and returns what else it decided to write
    /// (`Result.finishing`), for the caller to send with its `COMMIT`. `first` (the transaction's
    /// settings) run before anything else, in the round trip that takes the append lock and reads.
    static func run(
        _ submissions: [CommandSubmission], collectionId: String, biometrics: Biometrics, first: [PostgresStatement] = [],
        in session: PostgresSession
    ) throws -> Result {
        // One round trip: the settings, the append lock, the write model's position, the tokens and the
        // named rows, the reads under the lock.
        let named = Self.named(by: submissions, in: collectionId)
        let tokenLookup = tokenLookup(for: submissions, collectionId: collectionId).map { [$0] } ?? []
        var (loaded, results) = try PartialState.load(named, from: .writeModel, after: first + WriteModel.locking + tokenLookup, in: session)
        let (writeModelPosition, head) = try WriteModel.positions(from: results[first.count + WriteModel.locking.count - 1])
        if writeModelPosition < head.position {
            // Something appended without folding (rare): fold it, then read again.
            try WriteModel.catchUp(in: session, biometrics: biometrics)
            (loaded, results) = try PartialState.load(named, from: .writeModel, after: tokenLookup, in: session)
        }
        let facts = try readFacts(
            for: submissions, collectionId: collectionId, state: loaded.state,
            tokens: storedTokens(from: tokenLookup.isEmpty ? [] : results.last!.rows),
            in: session)
        var plan = BatchDecision.decide(submissions, collectionId: collectionId, facts: facts)
        if plan.replays > 0 { Counter(label: "faceledger_idempotent_replays_total").increment(by: plan.replays) }
        for (commandId, owner) in plan.releases {
            _ = try PendingCommands.release(commandId, heldBy: owner, in: session)
        }
        for (commandId, owner, until) in plan.postponements {
            _ = try PendingCommands.postpone(commandId, heldBy: owner, until: until, in: session)
        }
        guard !plan.events.isEmpty else { return Result(outcomes: plan.outcomes) }
        let encoded = try Encoded(plan.events, collectionId: collectionId, biometrics: biometrics)
        // The append is not sent now: knowing the head, the batch knows where its events land, so the
        // append goes with the writes that follow from it and the COMMIT, in one round trip.
        var appends: [PostgresStatement] = []
        var recorded: [EventLog.Appended] = []
        for chunk in chunked(encoded.events) {
            let (statement, appended) = EventLog.appending(Array(chunk), to: collectionId, after: head.advanced(past: recorded))
            appends.append(statement)
            recorded += appended
        }
        let folded = recorded.indices.filter { !LedgerEvent.typesWithoutStateEffect.contains(encoded.events[$0].type) }.map { index in
            (
                plan.events[index].event,
                EventContext(collectionId: collectionId, position: recorded[index].position, recordedAt: recorded[index].recordedAt)
            )
        }
        // The events and what follows from them, left for the caller to send with its COMMIT (one round trip).
        var writes = appends
        writes += try StateRows.statements(folding: folded, into: .writeModel, startingFrom: loaded, in: session)
        writes.append(WriteModel.advancing(to: recorded.last!.position))
        writes += binding(plan.newTokens, collectionId: collectionId, recorded: recorded)
        writes += keyChanges(encoded.keyChanges, collectionId: collectionId)
        for (command, keys, acceptedIndex, outcomeIndex) in plan.newPending {
            var command = command
            command.acceptedPosition = recorded[acceptedIndex].position
            command.acceptedAt = recorded[acceptedIndex].recordedAt
            writes.append(PendingCommands.inserting(command, keys: keys))
            plan.outcomes[outcomeIndex] = .pending(command, isNew: true)
        }
        return Result(outcomes: plan.outcomes, appended: (recorded.last!.position, recorded.count), finishing: writes)
    }

    /// What the pure step needs besides the state and the bound tokens (read with it): the pending
    /// tokens the submissions carry, the faces to forget whose embeddings are in clear, the leases of the
    /// commands being settled (their rows locked until the transaction ends), and, for an adoption, the
    /// collection's unsettled commands and last position.
    private static func readFacts(
        for submissions: [CommandSubmission], collectionId: String, state: LedgerState, tokens: [TokenKey: StoredToken],
        in session: PostgresSession
    ) throws -> BatchFacts {
        var facts = BatchFacts(state: state)
        facts.tokens = tokens
        facts.pending = try PendingCommands.byToken(for: submissions, in: session)
        var toForget: [String] = []
        var leased: [UUID] = []
        var adopting = false
        for submission in submissions {
            switch submission.step {
            case .decide:
                if case .success(.forgetFaces(_, let faceIds, _)) = submission.command { toForget += faceIds }
            case .settle(let settlement): leased.append(settlement.command.commandId)
            case .retryLater(let retry): leased.append(retry.command.commandId)
            case .abandon(let abandonment): leased.append(abandonment.command.commandId)
            case .adopt: adopting = true
            case .accept: break
            }
        }
        facts.facesInClear = Set(try Biometrics.facesInClear(toForget, collectionId: collectionId, in: session))
        facts.leases = try PendingCommands.leaseHolders(of: leased, in: session)
        if adopting {
            facts.unsettledCount = try session.query(
                "SELECT count(*) FROM pending_commands WHERE collection_id = $1",
                [.text(collectionId)])[0].decode(Int.self, at: 0)
            facts.lastPosition = try session.query(
                "SELECT coalesce(max(position), 0) FROM events WHERE collection_id = $1",
                [.text(collectionId)])[0].decode(Int64.self, at: 0)
        }
        return facts
    }

    /// What the submissions name, for loading the write model (`NamedEntities`).
    private static func named(by submissions: [CommandSubmission], in collectionId: String) -> NamedEntities {
        var named = NamedEntities()
        named.collections.insert(collectionId)
        for submission in submissions {
            switch submission.step {
            case .decide, .accept:
                if case .success(let command) = submission.command { named.add(command, mirroring: false) }
            case .settle(let settlement):
                named.add(settlement.ledgerCommand, mirroring: true)
                if case .succeeded(_, let outcome) = settlement.result { named.addFaces(namedIn: outcome, in: collectionId) }
            case .retryLater, .abandon:
                break
            case .adopt:
                named.wholeCollections.insert(collectionId)
            }
        }
        return named
    }

    /// The statements that apply a batch's changes to `face_keys` in event order; each run of new keys,
    /// or of destroyed ones, is one statement (an import or a deletion of 4096 faces is one statement,
    /// not 4096).
    private static func keyChanges(_ changes: [Encoded.KeyChange], collectionId: String) -> [PostgresStatement] {
        var statements: [PostgresStatement] = []
        var stores: [(sealed: Biometrics.Sealed, faceId: String)] = []
        var destroys: [String] = []
        func flush() {
            statements += [
                Biometrics.storing(stores, collectionId: collectionId),
                Biometrics.destroyingKeys(of: destroys, collectionId: collectionId),
            ].compactMap { $0 }
            (stores, destroys) = ([], [])
        }
        for change in changes {
            switch change {
            case .store(let sealed, let faceId):
                if !destroys.isEmpty { flush() }
                stores.append((sealed, faceId))
            case .destroy(let faceId):
                if !stores.isEmpty { flush() }
                destroys.append(faceId)
            case .destroyCollection:
                flush()
                statements.append(Biometrics.destroyingKeys(ofCollection: collectionId))
            }
        }
        flush()
        return statements
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

    /// The statement that reads the bound tokens the submissions name, in any collection (none when
    /// they name none). A log written before tokens were bound across collections may hold one token
    /// in several; then this collection's comes last, so it wins (`storedTokens`) and a true retry
    /// still replays.
    private static func tokenLookup(for submissions: [CommandSubmission], collectionId: String) -> PostgresStatement? {
        let requested = submissions.compactMap(\.lookupToken)
        guard !requested.isEmpty else { return nil }
        return PostgresStatement(
            """
            SELECT operation, client_token, request_hash, response, position FROM command_tokens
            WHERE client_token = ANY($1) ORDER BY collection_id = $2
            """,
            [.textArray(requested), .text(collectionId)])
    }

    /// The bound tokens in the rows of `tokenLookup`.
    private static func storedTokens(from rows: [PostgresRow]) throws -> [TokenKey: StoredToken] {
        var tokens: [TokenKey: StoredToken] = [:]
        for row in rows {
            // Parsed as JSONValue itself, so whole-number floats replay as floats (`100.0`), as first answered.
            let response = try JSONValue(parsing: Data(try row.decode(String.self, at: 3).utf8))
            tokens[TokenKey(operation: try row.decode(at: 0), token: try row.decode(at: 1))] =
                StoredToken(requestHash: try row.decode(at: 2), response: response, position: try row.decode(Int64.self, at: 4))
        }
        return tokens
    }

    /// The statement that binds the batch's new tokens to their outcomes, if it has any.
    private static func binding(_ tokens: [NewToken], collectionId: String, recorded: [EventLog.Appended]) -> [PostgresStatement] {
        guard !tokens.isEmpty else { return [] }
        return [
            PostgresStatement(
                """
                INSERT INTO command_tokens (collection_id, operation, client_token, request_hash, response, position, recorded_at)
                SELECT $1, t.operation, t.token, t.hash, t.response, t.position, $7
                FROM unnest($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::int8[]) AS t(operation, token, hash, response, position)
                """,
                [
                    .text(collectionId),
                    .textArray(tokens.map(\.key.operation)),
                    .textArray(tokens.map(\.key.token)),
                    .textArray(tokens.map(\.requestHash)),
                    .jsonbArray(tokens.map { String(decoding: $0.response.data, as: UTF8.self) }),
                    .int64Array(tokens.map { recorded[$0.settledIndex].position }),
                    .timestamp(recorded[0].recordedAt),
                ])
        ]
    }
}

extension CommandSubmission {
    /// The token under which a retry of this submission is found: the client's, or for an upstream
    /// acceptance the token sent upstream.
    var lookupToken: String? {
        if case .accept(let acceptance) = step { return acceptance.upstreamToken }
        return metadata.clientToken
    }
}

extension UpstreamCall {
    func recorded(attempt: Int, verdict: String) -> UpstreamAttempted {
        UpstreamAttempted(
            attempt: attempt, status: status, errorCode: errorCode,
            durationMs: duration / .milliseconds(1),
            verdict: verdict, reason: reason, by: by)
    }
}
