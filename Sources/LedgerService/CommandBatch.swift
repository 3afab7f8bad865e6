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
/// batch costs more as the log grows.
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
    }

    /// The batch's events, answers and bookkeeping as its submissions are handled in order.
    struct Writer {
        let biometrics: Biometrics
        let collectionId: String
        var events: [NewEvent] = []
        /// The domain events of `events`, one each, embeddings in clear: what the write model folds.
        var ledgerEvents: [LedgerEvent] = []
        var outcomes: [StepOutcome] = []
        var newTokens: [NewToken] = []
        /// Commands accepted for the upstream, with the index of their CommandAccepted event and of their outcome.
        var newPending: [(command: PendingUpstreamCommand, keys: [String], acceptedIndex: Int, outcomeIndex: Int)] = []
        /// What the batch does to `face_keys`, in the order of its events (a face deleted and imported
        /// again with its id in one batch keeps its new key).
        var keyChanges: [KeyChange] = []

        enum KeyChange {
            case store(Biometrics.Sealed, faceId: String)
            case destroy(faceId: String)
            case destroyCollection
        }

        mutating func record(_ recorded: [LedgerEvent], _ metadata: EventMetadata) throws {
            for var event in recorded {
                ledgerEvents.append(event)
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
                events.append(NewEvent(stream: encoded.stream, type: encoded.type, schemaVersion: encoded.schemaVersion,
                                       data: encoded.data, embedding: encoded.embedding, metadata: metadata))
            }
        }
    }

    /// Runs the batch inside the caller's transaction.
    static func run(
        _ submissions: [CommandSubmission], collectionId: String, biometrics: Biometrics, in session: PostgresSession
    ) throws -> Result {
        try session.query("SELECT pg_advisory_xact_lock($1)", [.int64(EventLog.appendLockKey)])
        try WriteModel.catchUp(in: session, biometrics: biometrics)
        let loaded = try PartialState.load(named(by: submissions, in: collectionId), from: .writeModel, in: session)
        var state = loaded.state
        var tokens = try storedTokens(for: submissions, collectionId: collectionId, in: session)
        var pending = try PendingCommands.byToken(for: submissions, in: session)
        var writer = Writer(biometrics: biometrics, collectionId: collectionId)

        func apply(_ events: [LedgerEvent]) {
            for event in events {
                // Positions and times are known only after the append; decisions do not depend on them.
                // The write model's rows get the log's, when the appended events are folded into them.
                state.evolve(event, EventContext(collectionId: collectionId, position: 0, recordedAt: Date()))
            }
        }

        for submission in submissions {
            var metadata = submission.metadata
            if metadata.commandId == nil { metadata.commandId = UUID() }
            func reject(_ error: LedgerError, upstreamCode: String? = nil) throws {
                try writer.record([.commandRejected(CommandRejected(request: submission.recordedRequest, error: error,
                                                                   upstreamCode: upstreamCode))], metadata)
                writer.outcomes.append(.answered(.failure(error)))
            }
            /// A retry of a settled command: the stored response (who retried is on record), or a
            /// mismatch when the token came with other parameters. False when the token is not bound.
            func replay(_ key: TokenKey?) throws -> Bool {
                guard let key, let stored = tokens[key] else { return false }
                if stored.requestHash == submission.requestHash {
                    try writer.record([.commandReplayed(CommandReplayed(request: submission.recordedRequest,
                                                                        requestHash: submission.requestHash,
                                                                        replayOf: stored.position))], metadata)
                    writer.outcomes.append(.answered(.success(stored.response)))
                    Counter(label: "faceledger_idempotent_replays_total").increment()
                } else {
                    try reject(LedgerError(.idempotentParameterMismatch,
                        "ClientRequestToken \(key.token) was already used with different parameters"))
                }
                return true
            }
            func bindToken(_ key: TokenKey?, response: JSONValue) {
                guard let key, !key.token.hasPrefix(CommandStep.derivedTokenPrefix) else { return }
                tokens[key] = StoredToken(requestHash: submission.requestHash, response: response, position: nil)
                writer.newTokens.append(NewToken(key: key, requestHash: submission.requestHash, response: response,
                                                 settledIndex: writer.events.count - 1))
            }

            switch submission.step {
            case .decide:
                // A token is bound per operation, across collections: the stored request hash covers the
                // CollectionId, so the same token with another collection is a mismatch.
                let key = metadata.clientToken.map { TokenKey(operation: submission.operation, token: $0) }
                if try replay(key) { continue }
                let command: LedgerCommand
                switch submission.command {
                case .failure(let error):
                    try reject(error)
                    continue
                case .success(let validated):
                    command = validated
                }
                if case .forgetFaces(_, let faceIds, _) = command {
                    // An embedding the log holds in clear has no key to destroy: forgetting it would be a lie.
                    let inClear = try Biometrics.facesInClear(faceIds, collectionId: collectionId, in: session)
                    if !inClear.isEmpty {
                        try reject(LedgerError(.invalidParameter, """
                            The embeddings of \(inClear.sorted().joined(separator: ", ")) were recorded before encryption: run \
                            `faceledger encrypt-log` first, then forget them
                            """))
                        continue
                    }
                }
                let decision = state.decide(command)
                switch decision.result {
                case .failure(let error):
                    try reject(error)
                case .success(let response):
                    try writer.record([.commandAccepted(CommandAccepted(request: submission.recordedRequest))] + decision.events,
                                      metadata)
                    try writer.record([.commandSettled(CommandSettled(response: response, requestHash: submission.requestHash))],
                                      metadata)
                    apply(decision.events)
                    bindToken(key, response: response)
                    writer.outcomes.append(.answered(.success(response)))
                }

            case .accept(let acceptance):
                let key = TokenKey(operation: submission.operation, token: acceptance.upstreamToken)
                if try replay(key) { continue }
                if let earlier = pending[key] {
                    // A retry of a command still unsettled: the caller drives that one, never a second.
                    if earlier.requestHash == submission.requestHash {
                        writer.outcomes.append(.pending(earlier, isNew: false))
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
                try writer.record([.commandAccepted(CommandAccepted(request: submission.recordedRequest,
                                                                    upstreamToken: acceptance.upstreamToken))], metadata)
                let accepted = PendingUpstreamCommand(
                    commandId: metadata.commandId!, collectionId: collectionId, operation: submission.operation,
                    upstreamToken: acceptance.upstreamToken, requestHash: submission.requestHash,
                    recordedRequest: submission.recordedRequest, body: acceptance.body, acceptedPosition: 0,
                    acceptedAt: Date(), attempts: 0, metadata: metadata)
                pending[key] = accepted
                writer.newPending.append((accepted, state.upstreamKeys(for: command),
                                          writer.events.count - 1, writer.outcomes.count))
                writer.outcomes.append(.pending(accepted, isNew: true))

            case .settle(let settlement):
                guard try PendingCommands.release(settlement.command.commandId, heldBy: settlement.leaseOwner, in: session) else {
                    writer.outcomes.append(.superseded)
                    continue
                }
                let key = TokenKey(operation: submission.operation, token: settlement.command.upstreamToken)
                pending[key] = nil
                let attempt = settlement.command.attempts + 1
                switch settlement.result {
                case .succeeded(let response):
                    let effects = state.mirror(settlement.ledgerCommand, answer: response)
                    try writer.record([.upstreamAttempted(settlement.call.recorded(attempt: attempt, verdict: "SETTLED"))]
                                      + effects
                                      + [.commandSettled(CommandSettled(response: response, requestHash: submission.requestHash))],
                                      metadata)
                    apply(effects)
                    bindToken(key, response: response)
                    writer.outcomes.append(.answered(.success(response)))
                case .rejected(let code, let message):
                    try writer.record([.upstreamAttempted(settlement.call.recorded(attempt: attempt, verdict: "REJECTED"))],
                                      metadata)
                    try reject(LedgerError(ErrorCode(rawValue: code) ?? .invalidParameter, message),
                               upstreamCode: ErrorCode(rawValue: code) == nil ? code : nil)
                }

            case .retryLater(let retry):
                guard try PendingCommands.postpone(retry.command.commandId, heldBy: retry.leaseOwner, until: retry.nextAttemptAt,
                                                   in: session)
                else {
                    writer.outcomes.append(.superseded)
                    continue
                }
                try writer.record([.upstreamAttempted(retry.call.recorded(attempt: retry.command.attempts + 1, verdict: "RETRY"))],
                                  metadata)
                writer.outcomes.append(.answered(.failure(LedgerError(.serviceUnavailable,
                    "The upstream did not settle the command (\(retry.call.reason ?? "no answer")); it is recorded and will be "
                    + "retried. Retry the request with the same ClientRequestToken to get its outcome"))))

            case .abandon(let abandonment):
                guard try PendingCommands.release(abandonment.command.commandId, heldBy: abandonment.leaseOwner, in: session) else {
                    writer.outcomes.append(.superseded)
                    continue
                }
                pending[TokenKey(operation: submission.operation, token: abandonment.command.upstreamToken)] = nil
                try writer.record([.commandAbandoned(CommandAbandoned(attempts: abandonment.command.attempts,
                                                                      reason: abandonment.reason))], metadata)
                writer.outcomes.append(.answered(.failure(LedgerError(.serviceUnavailable,
                    CommandStep.abandonedPrefix + abandonment.reason))))

            case .adopt(let observation, let record, let readAfter):
                let unsettled = try session.query("SELECT count(*) FROM pending_commands WHERE collection_id = $1",
                                                  [.text(collectionId)])[0].decode(Int.self, at: 0)
                let last = try session.query("SELECT coalesce(max(position), 0) FROM events WHERE collection_id = $1",
                                             [.text(collectionId)])[0].decode(Int64.self, at: 0)
                if unsettled > 0 || last > readAfter {
                    writer.outcomes.append(.answered(.failure(LedgerError(.conflict, unsettled > 0
                        ? "\(unsettled) commands of collection \(collectionId) are unsettled: settle them first (reconcile --once), or their effects would count as drift"
                        : "collection \(collectionId) changed while the upstream was read: run the check again"))))
                    continue
                }
                let effects = state.adoption(of: observation, in: collectionId)
                if record && !effects.isEmpty {
                    let summary = JSONValue.object(["Observed": .string("upstream"), "Changes": .integer(effects.count)])
                    try writer.record([.commandAccepted(CommandAccepted(request: submission.recordedRequest))] + effects
                                      + [.commandSettled(CommandSettled(response: summary, requestHash: ""))], metadata)
                    apply(effects)
                }
                writer.outcomes.append(.adopted(effects))
            }
        }

        guard !writer.events.isEmpty else { return Result(outcomes: writer.outcomes) }
        var recorded: [RecordedEvent] = []
        for chunk in chunked(writer.events) {
            recorded += try EventLog.append(Array(chunk), to: collectionId, expecting: [:], in: session)
        }
        let folded = zip(writer.ledgerEvents, recorded).filter { !LedgerEvent.typesWithoutStateEffect.contains($1.type) }
            .map { event, recorded in
                (event, EventContext(collectionId: collectionId, position: recorded.position, recordedAt: recorded.recordedAt))
            }
        try StateRows.fold(folded, into: .writeModel, startingFrom: loaded, in: session)
        try WriteModel.advance(to: recorded.last!.position, in: session)
        try bind(writer.newTokens, collectionId: collectionId, recorded: recorded, in: session)
        try applyKeyChanges(writer.keyChanges, collectionId: collectionId, in: session)
        for (command, keys, acceptedIndex, outcomeIndex) in writer.newPending {
            var command = command
            command.acceptedPosition = recorded[acceptedIndex].position
            command.acceptedAt = recorded[acceptedIndex].recordedAt
            try PendingCommands.insert(command, keys: keys, in: session)
            writer.outcomes[outcomeIndex] = .pending(command, isNew: true)
        }
        return Result(outcomes: writer.outcomes, appended: (recorded.last!.position, recorded.count))
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
                if case .succeeded(let answer) = settlement.result { named.addFaces(namedIn: answer, in: collectionId) }
            case .retryLater, .abandon:
                break
            case .adopt:
                named.wholeCollections.insert(collectionId)
            }
        }
        return named
    }

    /// Applies a batch's changes to `face_keys` in event order; each run of new keys, or of destroyed
    /// ones, is one statement (an import or a deletion of 4096 faces is one statement, not 4096).
    private static func applyKeyChanges(_ changes: [Writer.KeyChange], collectionId: String, in session: PostgresSession) throws {
        var stores: [(sealed: Biometrics.Sealed, faceId: String)] = []
        var destroys: [String] = []
        func flush() throws {
            try Biometrics.store(stores, collectionId: collectionId, in: session)
            try Biometrics.destroyKeys(of: destroys, collectionId: collectionId, in: session)
            (stores, destroys) = ([], [])
        }
        for change in changes {
            switch change {
            case .store(let sealed, let faceId):
                if !destroys.isEmpty { try flush() }
                stores.append((sealed, faceId))
            case .destroy(let faceId):
                if !stores.isEmpty { try flush() }
                destroys.append(faceId)
            case .destroyCollection:
                try flush()
                try Biometrics.destroyKeys(ofCollection: collectionId, in: session)
            }
        }
        try flush()
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
        let requested = submissions.compactMap(\.lookupToken)
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
        UpstreamAttempted(attempt: attempt, status: status, errorCode: errorCode,
                          durationMs: duration.secondsDouble * 1000,
                          verdict: verdict, reason: reason, by: by)
    }
}
