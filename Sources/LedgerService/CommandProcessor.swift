import EventLog
import Foundation
import LedgerDomain
import Logging
import Postgres
import Synchronization

/// The write side: records every command in the log and decides it against a consistent state.
///
/// Submissions queue up; one worker takes everything queued (up to `maxBatch`) and handles it per
/// collection in one transaction: take the append lock, catch the in-memory state up with the log
/// (other instances may have appended), answer idempotent retries from `command_tokens`, decide each
/// command against the state as the previous ones left it, append all their events at once and bind
/// their tokens, commit. Concurrent requests thus share one commit (group commit), and no two
/// decisions can interleave: a face never gets two owners, a user never exceeds 100 faces.
public final class CommandProcessor: Sendable {
    private let connection: PostgresConnection
    private let logger: Logger
    private let maxBatch: Int
    private let maxPending: Int
    private let onCommitted: @Sendable () -> Void
    private let queue = Mutex<[Pending]>([])
    private let wakeUp: AsyncStream<Void>.Continuation
    private let wakeUps: AsyncStream<Void>
    private let worker = WorkerState()
    private let committed = Atomic<Int64>(0)

    private struct Pending: Sendable {
        let submission: CommandSubmission
        let continuation: CheckedContinuation<CommandOutcome, Never>
    }

    /// - Parameters:
    ///   - maxBatch: the most submissions one transaction takes.
    ///   - maxPending: the most submissions that may wait; past it a submission is refused at once
    ///     with ProvisionedThroughputExceededException (which the AWS SDKs retry with back-off).
    public init(connection: PostgresConnection, logger: Logger, maxBatch: Int = 256, maxPending: Int = 10_000,
                onCommitted: @escaping @Sendable () -> Void = {}) {
        self.connection = connection
        self.logger = logger
        self.maxBatch = maxBatch
        self.maxPending = maxPending
        self.onCommitted = onCommitted
        (wakeUps, wakeUp) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The log position of the last batch this processor committed.
    public var committedPosition: Int64 { committed.load(ordering: .acquiring) }

    /// Submits a command and waits for its outcome.
    public func submit(_ submission: CommandSubmission) async -> CommandOutcome {
        await withCheckedContinuation { continuation in
            let accepted = queue.withLock { queue -> Bool in
                guard queue.count < maxPending else { return false }
                queue.append(Pending(submission: submission, continuation: continuation))
                return true
            }
            if accepted {
                wakeUp.yield()
            } else {
                continuation.resume(returning: .failure(LedgerError(.provisionedThroughputExceeded,
                    "Too many commands are waiting; retry the request")))
            }
        }
    }

    /// Folds the log into memory without holding the append lock, so the first batch does not
    /// stall other writers while it reads the whole history.
    public func warmUp() async throws {
        try await connection.run { [worker] session in try Self.catchUp(&worker.folded, in: session) }
    }

    /// Runs the worker until the task is cancelled; then fails what is still queued.
    public func run() async {
        for await _ in wakeUps {
            while true {
                let batch = queue.withLock { queue -> [Pending] in
                    let taken = Array(queue.prefix(maxBatch))
                    queue.removeFirst(taken.count)
                    return taken
                }
                if batch.isEmpty { break }
                await process(batch)
            }
            if Task.isCancelled { break }
        }
        let abandoned = queue.withLock { queue in defer { queue = [] }; return queue }
        for pending in abandoned {
            pending.continuation.resume(returning: .failure(LedgerError(.serviceUnavailable, "The service is shutting down")))
        }
    }

    /// Stops the worker once the queue is empty.
    public func finish() { wakeUp.finish() }

    private func process(_ batch: [Pending]) async {
        // One transaction per collection: no transaction spans two collections.
        var order: [String] = []
        var groups: [String: [Pending]] = [:]
        for pending in batch {
            if groups[pending.submission.collectionId] == nil { order.append(pending.submission.collectionId) }
            groups[pending.submission.collectionId, default: []].append(pending)
        }
        for collectionId in order {
            let group = groups[collectionId]!
            let submissions = group.map(\.submission)
            do {
                let outcomes = try await connection.run { [worker] session in
                    try session.transaction { try Self.handle(submissions, collectionId: collectionId, state: worker, in: session) }
                }
                worker.isDirty = false  // committed: the state holds nothing that is not in the log
                committed.store(worker.folded.position, ordering: .releasing)
                for (pending, outcome) in zip(group, outcomes) { pending.continuation.resume(returning: outcome) }
                onCommitted()
            } catch {
                let failure = LedgerError.databaseFailure(error)
                logger.error("command batch failed", metadata: ["error": "\(error)", "detail": "\((error as? PostgresError)?.serverMessage ?? "")"])
                for pending in group { pending.continuation.resume(returning: .failure(failure)) }
            }
        }
    }

    /// Reads and folds every event after the state's position.
    static func catchUp(_ folded: inout FoldedState, in session: PostgresSession) throws {
        while true {
            let events = try EventLog.read(after: folded.position, limit: 5000, in: session)
            guard let last = events.last else { return }
            try folded.state.fold(events)
            folded.position = last.position
        }
    }

    private struct StoredToken {
        let requestHash: String
        let response: JSONValue
    }

    private struct TokenKey: Hashable {
        let operation: String
        let token: String
    }

    /// The body of one batch's transaction; returns each submission's outcome.
    ///
    /// Decisions are applied to the state in place (copying a large state per batch would cost more
    /// than the batch). Until the transaction commits the state is marked dirty: if it does not, the
    /// next batch folds the log afresh.
    static func handle(
        _ submissions: [CommandSubmission], collectionId: String, state worker: WorkerState, in session: PostgresSession
    ) throws -> [CommandOutcome] {
        try session.query("SELECT pg_advisory_xact_lock($1)", [.int64(EventLog.appendLockKey)])
        if worker.isDirty { worker.folded = FoldedState() }
        try catchUp(&worker.folded, in: session)
        let foldedPosition = worker.folded.position

        var tokens: [TokenKey: StoredToken] = [:]
        let requested = submissions.compactMap(\.metadata.clientToken)
        if !requested.isEmpty {
            for row in try session.query(
                "SELECT operation, client_token, request_hash, response FROM command_tokens WHERE collection_id = $1 AND client_token = ANY($2)",
                [.text(collectionId), .textArray(requested)])
            {
                let response = try JSONDecoder().decode(JSONValue.self, from: Data(try row.decode(String.self, at: 3).utf8))
                tokens[TokenKey(operation: try row.decode(at: 0), token: try row.decode(at: 1))] =
                    StoredToken(requestHash: try row.decode(at: 2), response: response)
            }
        }

        worker.isDirty = true
        var outcomes: [CommandOutcome] = []
        var events: [NewEvent] = []
        var newTokens: [(key: TokenKey, hash: String, response: JSONValue, settledIndex: Int)] = []
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

            let key = metadata.clientToken.map { TokenKey(operation: submission.operation, token: $0) }
            if let key, let stored = tokens[key] {
                if stored.requestHash == submission.requestHash {
                    outcomes.append(.success(stored.response))  // the stored response; nothing changes
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
                    worker.folded.state.evolve(event, EventContext(collectionId: collectionId, position: foldedPosition, recordedAt: Date()))
                }
                if let key {
                    tokens[key] = StoredToken(requestHash: submission.requestHash, response: response)
                    newTokens.append((key, submission.requestHash, response, events.count - 1))
                }
                outcomes.append(.success(response))
            }
        }

        guard !events.isEmpty else { return outcomes }
        let recorded = try EventLog.append(events, to: collectionId, expecting: [:], in: session)
        if !newTokens.isEmpty {
            try session.query("""
                INSERT INTO command_tokens (collection_id, operation, client_token, request_hash, response, position, recorded_at)
                SELECT $1, t.operation, t.token, t.hash, t.response, t.position, $7
                FROM unnest($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::int8[]) AS t(operation, token, hash, response, position)
                """, [
                    .text(collectionId),
                    .textArray(newTokens.map(\.key.operation)),
                    .textArray(newTokens.map(\.key.token)),
                    .textArray(newTokens.map(\.hash)),
                    .jsonbArray(newTokens.map { String(decoding: $0.response.data, as: UTF8.self) }),
                    .int64Array(newTokens.map { recorded[$0.settledIndex].position }),
                    .timestamp(recorded[0].recordedAt),
                ])
        }
        worker.folded.position = recorded.last!.position
        worker.folded.eventCount += Int64(recorded.count)
        return outcomes
    }
}

/// The processor's folded state. Only the worker touches it, one batch at a time (on the
/// connection's thread while a batch runs), which is what makes the unchecked Sendable sound.
final class WorkerState: @unchecked Sendable {
    var folded = FoldedState()
    /// True while the state may hold decisions of a transaction that has not committed.
    var isDirty = false
}

extension LedgerError {
    /// What a client hears when the database fails: 503 when it cannot be reached, else 500, never
    /// the database's own message. The outcome of a commit cut off mid-way is unknown; a retry with
    /// the same ClientRequestToken finds out.
    public static func databaseFailure(_ error: any Error) -> LedgerError {
        if let error = error as? PostgresError, error.isConnectivityProblem {
            return LedgerError(.serviceUnavailable, "The service is temporarily unavailable; retry the request")
        }
        return LedgerError(.internalServerError, "Internal server error")
    }
}
