import EventLog
import Foundation
import LedgerDomain
import Logging
import Metrics
import Postgres
import RekognitionWire
import ServiceLifecycle
import Synchronization
import Tracing

/// How much the command processor takes on, and how long a command may wait.
public struct CommandProcessorLimits: Sendable {
    /// The most submissions one transaction takes.
    public var maxBatch: Int
    /// The most payload bytes (embeddings, mostly) one transaction takes; a single larger submission
    /// still goes, alone.
    public var maxBatchBytes: Int
    /// The most submissions that may wait; past it a submission is refused at once with
    /// ProvisionedThroughputExceededException (which the AWS SDKs retry with back-off).
    public var maxPending: Int
    /// The most payload bytes that may wait or be in flight; past it, the same refusal. This is what
    /// bounds memory under concurrent maximal ImportFaces.
    public var maxPendingBytes: Int
    /// How long a submission may wait for its outcome. Past it the client gets 503
    /// ServiceUnavailableException: at once if the command never started (nothing happened), or
    /// while its transaction is still running (its outcome is then unknown; a retry with the same
    /// ClientRequestToken finds it out).
    public var deadline: Duration

    public init(
        maxBatch: Int = 256, maxBatchBytes: Int = 64 << 20, maxPending: Int = 10_000, maxPendingBytes: Int = 256 << 20,
        deadline: Duration = .seconds(5)
    ) {
        self.maxBatch = maxBatch
        self.maxBatchBytes = maxBatchBytes
        self.maxPending = maxPending
        self.maxPendingBytes = maxPendingBytes
        self.deadline = deadline
    }
}

/// The write side: records every command in the log and decides it against a consistent state.
///
/// Submissions queue up; one worker takes what is queued (within `maxBatch` and `maxBatchBytes`) and
/// handles it per collection in one transaction (`CommandBatch`). Concurrent requests thus share one
/// commit (group commit), and no two decisions can interleave: a face never gets two owners, a user
/// never exceeds 100 faces.
///
/// A batch the database refuses is split in halves, each retried on its own, until the command that
/// causes the refusal fails alone: one poison command costs its batch O(log₂ n) extra transactions,
/// never the other commands' success. The processor keeps no state of the ledger between batches:
/// each loads what it names from the write model (`CommandBatch`).
///
/// As a service it owns its connection: `run()` opens it, brings the write model up to the log's head
/// (`ready()` returns then), works until graceful shutdown, and closes it.
public final class CommandProcessor: Service, Sendable {
    private let conninfo: String
    private let reconnectTimeout: Duration
    private let settings: SessionSettings
    private let startup = Startup()
    private let logger: Logger
    private let limits: CommandProcessorLimits
    private let onCommitted: @Sendable () -> Void
    /// Runs between a batch's commits and their flush; for tests that break the connection there.
    private let beforeFlush: @Sendable () async -> Void
    private let queue = Mutex(Queue())
    private let wakeUp: AsyncStream<Void>.Continuation
    private let wakeUps: AsyncStream<Void>
    private let biometrics: Biometrics
    private let committed = Atomic<Int64>(0)

    /// What waits for the worker, and what it has taken but not yet answered.
    private struct Queue {
        var waiting: [Pending] = []
        var inFlight: [Pending] = []
        /// Payload bytes of `waiting` and `inFlight`.
        var bytes = 0
        /// Set when the worker has stopped: nothing would ever answer a new submission.
        var stopped = false
    }

    /// One submission and the client waiting for it, answered exactly once: by the worker, or by
    /// the deadline, whichever comes first.
    private final class Pending: Sendable {
        let submission: CommandSubmission
        let bytes: Int
        let deadline: ContinuousClock.Instant
        /// The submitter's trace context: its batch's span links to it.
        let context: ServiceContext
        private let continuation: Mutex<CheckedContinuation<StepOutcome, Never>?>

        init(_ submission: CommandSubmission, deadline: ContinuousClock.Instant, continuation: CheckedContinuation<StepOutcome, Never>) {
            self.submission = submission
            self.bytes = submission.payloadBytes
            self.deadline = deadline
            self.context = ServiceContext.current ?? .topLevel
            self.continuation = Mutex(continuation)
        }

        func answer(_ outcome: StepOutcome) {
            continuation.withLock { $0.take() }?.resume(returning: outcome)
        }

        func answer(_ outcome: CommandAnswer) { answer(.answered(outcome)) }
    }

    /// - Parameter reconnectTimeout, settings: those of the processor's connection (`PostgresConnection.connect`);
    ///   the processor adds `durableCommits` and `keyLookups` to the settings itself.
    public convenience init(
        conninfo: String, reconnectTimeout: Duration = .seconds(15), settings: SessionSettings = .none, logger: Logger,
        biometrics: Biometrics, limits: CommandProcessorLimits = CommandProcessorLimits(),
        onCommitted: @escaping @Sendable () -> Void = {}
    ) {
        self.init(
            conninfo: conninfo, reconnectTimeout: reconnectTimeout, settings: settings, logger: logger, biometrics: biometrics,
            limits: limits, onCommitted: onCommitted, beforeFlush: {})
    }

    init(
        conninfo: String, reconnectTimeout: Duration = .seconds(15), settings: SessionSettings = .none, logger: Logger,
        biometrics: Biometrics, limits: CommandProcessorLimits = CommandProcessorLimits(),
        onCommitted: @escaping @Sendable () -> Void = {}, beforeFlush: @escaping @Sendable () async -> Void
    ) {
        self.beforeFlush = beforeFlush
        self.biometrics = biometrics
        self.conninfo = conninfo
        self.reconnectTimeout = reconnectTimeout
        // Whoever runs it (serve, forget, revert, the reconciler): answers durable whatever the database's
        // default, and lookups planned for their keys.
        self.settings = settings.durableCommits.keyLookups
        self.logger = logger
        self.limits = limits
        self.onCommitted = onCommitted
        (wakeUps, wakeUp) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The log position of the last batch this processor committed (at start, the log's head).
    public var committedPosition: Int64 { committed.load(ordering: .acquiring) }

    /// How many submissions wait for the worker (not counting the batch in flight).
    public var queuedCount: Int { queue.withLock { $0.waiting.count } }

    /// How many submissions the worker has taken and not yet finished.
    var inFlightCount: Int { queue.withLock { $0.inFlight.count } }

    /// Submits a command to be decided and waits for its outcome, at most `limits.deadline`.
    public func submit(_ submission: CommandSubmission) async -> CommandAnswer {
        switch await perform(submission) {
        case .answered(let outcome): return outcome
        case .pending, .superseded, .adopted: return .failure(LedgerError(.internalServerError, "Internal server error"))
        }
    }

    /// Takes one step of a command (`CommandStep`) and waits for what it came to, at most `limits.deadline`.
    public func perform(_ submission: CommandSubmission) async -> StepOutcome {
        let deadline = ContinuousClock.now + limits.deadline
        return await withCheckedContinuation { continuation in
            let pending = Pending(submission, deadline: deadline, continuation: continuation)
            let admitted = queue.withLock { queue -> Bool? in
                if queue.stopped { return nil }
                guard queue.waiting.count < limits.maxPending,
                    queue.bytes == 0 || queue.bytes + pending.bytes <= limits.maxPendingBytes
                else { return false }
                queue.waiting.append(pending)
                queue.bytes += pending.bytes
                return true
            }
            switch admitted {
            case true?:
                wakeUp.yield()
            case nil:
                pending.answer(.failure(LedgerError(.serviceUnavailable, "The service is shutting down")))
            case false?:
                pending.answer(
                    .failure(
                        LedgerError(
                            .provisionedThroughputExceeded,
                            "Too many commands are waiting; retry the request")))
            }
        }
    }

    /// Brings the write model up to the log's head: nothing to do unless the log was written before the
    /// write model existed (then it is folded once, a page per transaction, so other writers wait for
    /// a page at most). What is in the log then counts as committed: reads after a restart wait for
    /// the projector to fold it, as they wait for this process's own writes.
    private func warmUp(on connection: PostgresConnection) async throws {
        let head = try await connection.run { [biometrics] session in
            var caughtUp = false
            while !caughtUp {
                caughtUp = try session.transaction {
                    try session.query("SELECT pg_advisory_xact_lock($1)", [.int64(EventLog.appendLockKey)])
                    return try WriteModel.catchUp(in: session, biometrics: biometrics, maxEvents: Int64(Biometrics.pageSize))
                }
            }
            return try WriteModel.positions(in: session).head
        }
        committed.store(head, ordering: .releasing)
    }

    /// Opens the processor's connection and warms up (`warmUp`), then runs the worker until graceful
    /// shutdown or `finish()`: it finishes what is queued (the HTTP server, stopped first, has no
    /// requests left in flight), then fails what is still queued and closes the connection. A failure
    /// to connect or to warm up is thrown, here and to `ready()`.
    public func run() async throws {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(conninfo, reconnectTimeout: reconnectTimeout, settings: settings)
            do {
                try await warmUp(on: connection)
            } catch {
                await connection.close()
                throw error
            }
        } catch {
            startup.end(.failure(error))
            failQueued()
            throw error
        }
        startup.end(.success(()))
        await withGracefulShutdownHandler {
            await work(on: connection)
        } onGracefulShutdown: {
            self.finish()
        }
        await connection.close()
    }

    /// Waits until `run()` has warmed up and takes submissions; throws what kept it from doing so.
    public func ready() async throws { try await startup.wait() }

    /// Runs the processor beside `body`, which starts once it is ready; then finishes what is queued
    /// and waits for `run()` to close its connection. For a command-line tool's few commands.
    public func running<T>(_ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask { try await self.run() }
            let result: Result<T, any Error>
            do {
                try await ready()
                result = .success(try await body())
            } catch {
                result = .failure(error)
            }
            finish()
            try await group.waitForAll()
            return try result.get()
        }
    }

    /// Runs the worker until `finish()` (or cancellation); then fails what is still queued.
    private func work(on connection: PostgresConnection) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.answerOverdue() }
            for await _ in wakeUps {
                while let batch = takeBatch() {
                    await process(batch, on: connection)
                }
                if Task.isCancelled { break }
            }
            group.cancelAll()
        }
        failQueued()
    }

    /// Stops taking submissions and fails those still queued.
    private func failQueued() {
        let abandoned = queue.withLock { queue in
            defer { queue = Queue(stopped: true) }
            return queue.waiting + queue.inFlight
        }
        for pending in abandoned {
            pending.answer(.failure(LedgerError(.serviceUnavailable, "The service is shutting down")))
        }
    }

    /// Stops the worker once the queue is empty.
    public func finish() { wakeUp.finish() }

    // MARK: Deadlines

    /// Answers every submission past its deadline, a few times per deadline, until cancelled.
    /// Waiting ones leave the queue (they never run); in-flight ones are answered now and their
    /// batch's answer, when it comes, is dropped.
    private func answerOverdue() async {
        let tick = max(.milliseconds(20), min(.milliseconds(250), limits.deadline / 10))
        while !Task.isCancelled {
            try? await Task.sleep(for: tick)
            let now = ContinuousClock.now
            let (expired, overdue) = queue.withLock { queue -> ([Pending], [Pending]) in
                let expired = queue.waiting.filter { $0.deadline <= now }
                guard !expired.isEmpty || queue.inFlight.contains(where: { $0.deadline <= now }) else { return ([], []) }
                queue.waiting.removeAll { $0.deadline <= now }
                queue.bytes -= expired.reduce(0) { $0 + $1.bytes }
                return (expired, queue.inFlight.filter { $0.deadline <= now })
            }
            for pending in expired {
                pending.answer(
                    .failure(
                        LedgerError(
                            .serviceUnavailable,
                            "The database did not take the command in time; nothing was changed. Retry the request")))
            }
            for pending in overdue {
                pending.answer(
                    .failure(
                        LedgerError(
                            .serviceUnavailable,
                            "The command did not complete in time; its outcome is unknown. Retry with the same ClientRequestToken")))
            }
        }
    }

    // MARK: Batches

    /// Takes the next batch off the queue: at least one submission, then as many as fit the limits.
    private func takeBatch() -> [Pending]? {
        queue.withLock { queue -> [Pending]? in
            guard !queue.waiting.isEmpty else { return nil }
            var count = 0
            var bytes = 0
            for pending in queue.waiting {
                guard count < limits.maxBatch, count == 0 || bytes + pending.bytes <= limits.maxBatchBytes else { break }
                count += 1
                bytes += pending.bytes
            }
            let batch = Array(queue.waiting.prefix(count))
            queue.waiting.removeFirst(count)
            queue.inFlight.append(contentsOf: batch)
            return batch
        }
    }

    private func process(_ batch: [Pending], on connection: PostgresConnection) async {
        await withSpan("command batch", ofKind: .internal) { span in
            span.attributes["faceledger.commands"] = batch.count
            for pending in batch { span.addLink(SpanLink(context: pending.context, attributes: [:])) }
            await processTraced(batch, on: connection)
        }
    }

    private func processTraced(_ batch: [Pending], on connection: PostgresConnection) async {
        Recorder(label: "faceledger_command_batch_size").record(batch.count)
        // One transaction per collection: no transaction spans two collections.
        let groups = Self.byCollection(batch)
        // Every transaction of the batch in one visit to the connection's thread, one after the other.
        let context = ServiceContext.current ?? .topLevel
        let committedBatch: CommittedBatch
        do {
            committedBatch = try await connection.run { session in
                var committedBatch = CommittedBatch()
                for (collectionId, group) in groups {
                    self.commit(group, collectionId: collectionId, in: session, context: context, into: &committedBatch)
                }
                self.completeCommit(in: session, context: context, into: &committedBatch)
                return committedBatch
            }
        } catch {
            // The connection's thread is gone (the processor is closing): nothing ran.
            let failure = LedgerError.databaseFailure(error)
            for pending in batch { pending.answer(.failure(failure)) }
            committedBatch = CommittedBatch()
        }
        await answerWhenDurable(committedBatch, on: connection)
        let answered = Set(batch.map(ObjectIdentifier.init))
        queue.withLock { queue in
            queue.inFlight.removeAll { answered.contains(ObjectIdentifier($0)) }
            queue.bytes -= batch.reduce(0) { $0 + $1.bytes }
        }
    }

    /// The batch's submissions by collection, in the order each collection first appears.
    private static func byCollection(_ batch: [Pending]) -> [(collectionId: String, group: [Pending])] {
        var order: [String] = []
        var groups: [String: [Pending]] = [:]
        for pending in batch {
            if groups[pending.submission.collectionId] == nil { order.append(pending.submission.collectionId) }
            groups[pending.submission.collectionId, default: []].append(pending)
        }
        return order.map { ($0, groups[$0]!) }
    }

    /// What a batch's transactions committed, held until it is durable (`answerWhenDurable`), with the
    /// number of the connection each committed on (`PostgresSession.connectionNumber`).
    private struct CommittedBatch: Sendable {
        var answers: [(pending: Pending, outcome: StepOutcome, connection: Int)] = []
        var lastPosition: Int64?
        /// The last transaction, whose commit is still pending in the session
        /// (`PostgresSession.transaction(_:committingLater:)`): it counts once that commit went through.
        var uncommitted: Transaction?

        struct Transaction: Sendable {
            var group: [Pending]
            var collectionId: String
            var result: CommandBatch.Result
            var connection: Int
        }

        mutating func add(_ transaction: Transaction) {
            if let appended = transaction.result.appended { lastPosition = appended.lastPosition }
            answers += zip(transaction.group, transaction.result.outcomes).map { ($0, $1, transaction.connection) }
        }

        /// The pending commit went through: the transaction counts.
        mutating func commitUncommitted() {
            if let transaction = uncommitted { add(transaction) }
            uncommitted = nil
        }
    }

    /// Commits one collection's submissions in one transaction and holds their outcomes in `committedBatch`;
    /// answers at once what cannot commit. When the database refuses the transaction for something a
    /// command carried, retries each half alone, so only the offending command fails.
    ///
    /// The transaction's last writes and its `COMMIT` are left pending (`deferring`): they travel with
    /// the next transaction's first round trip, or with `completeCommit`, a round trip fewer for each
    /// collection. A refused pending commit surfaces there, and its group runs again, committing at once.
    private func commit(
        _ group: [Pending], collectionId: String, in session: PostgresSession, context: ServiceContext,
        deferring: Bool = true, into committedBatch: inout CommittedBatch
    ) {
        // A command whose client was already answered at its deadline, and that has not started, does
        // not start now: its client was told 503, so it must not take effect behind their back.
        let now = ContinuousClock.now
        for pending in group where pending.deadline <= now {
            pending.answer(
                .failure(
                    LedgerError(
                        .serviceUnavailable,
                        "The database did not take the command in time; nothing was changed. Retry the request")))
        }
        let group = group.filter { $0.deadline > now }
        guard !group.isEmpty else { return }
        do {
            let result = try transaction(
                group.map(\.submission), collectionId: collectionId, in: session, context: context, deferring: deferring)
            // The previous transaction's pending commit went with this one's first round trip.
            committedBatch.commitUncommitted()
            let transaction = CommittedBatch.Transaction(
                group: group, collectionId: collectionId, result: result, connection: session.connectionNumber)
            if deferring { committedBatch.uncommitted = transaction } else { committedBatch.add(transaction) }
        } catch let refused as PostgresPendingCommitFailed {
            // The previous transaction did not commit, and nothing of this one ran.
            retry(uncommittedAfter: refused, in: session, context: context, into: &committedBatch)
            commit(group, collectionId: collectionId, in: session, context: context, deferring: deferring, into: &committedBatch)
        } catch  where group.count > 1 && Self.mayBeCausedByOneCommand(error) {
            committedBatch.commitUncommitted()
            logger.warning(
                "command batch refused; retrying its halves apart",
                metadata: [
                    "collection": "\(collectionId)", "commands": "\(group.count)", "error": "\(error)",
                ])
            let half = group.count / 2
            for part in [Array(group[..<half]), Array(group[half...])] {
                commit(part, collectionId: collectionId, in: session, context: context, deferring: false, into: &committedBatch)
            }
        } catch {
            committedBatch.commitUncommitted()
            fail(group, collectionId: collectionId, error)
        }
    }

    /// Sends the last transaction's pending commit, if any, and counts the transaction once it went through.
    private func completeCommit(in session: PostgresSession, context: ServiceContext, into committedBatch: inout CommittedBatch) {
        guard let transaction = committedBatch.uncommitted else { return }
        do {
            try session.completePendingCommit()
            committedBatch.commitUncommitted()
        } catch let refused as PostgresPendingCommitFailed {
            retry(uncommittedAfter: refused, in: session, context: context, into: &committedBatch)
        } catch {
            // Lost on the way: its outcome is unknown.
            committedBatch.uncommitted = nil
            fail(transaction.group, collectionId: transaction.collectionId, error)
        }
    }

    /// The database refused the pending commit of `committedBatch.uncommitted`, so it was rolled back:
    /// its group runs again, committing at once, where its own failure splits it as any other's.
    private func retry(
        uncommittedAfter refused: PostgresPendingCommitFailed, in session: PostgresSession, context: ServiceContext,
        into committedBatch: inout CommittedBatch
    ) {
        guard let transaction = committedBatch.uncommitted else { return }
        committedBatch.uncommitted = nil
        guard Self.mayBeCausedByOneCommand(refused.error) else {
            return fail(transaction.group, collectionId: transaction.collectionId, refused.error)
        }
        commit(
            transaction.group, collectionId: transaction.collectionId, in: session, context: context, deferring: false,
            into: &committedBatch)
    }

    private func fail(_ group: [Pending], collectionId: String, _ error: any Error) {
        logger.error(
            "command failed",
            metadata: [
                "collection": "\(collectionId)", "commands": "\(group.count)",
                "operations": "\(Set(group.map(\.submission.operation)).sorted())", "error": "\(error)",
                "detail": "\((error as? PostgresError)?.serverMessage ?? "\(error)")",
            ])
        let failure = LedgerError.databaseFailure(error)
        for pending in group { pending.answer(.failure(failure)) }
    }

    /// Makes the batch's transactions durable with one WAL flush, then answers them.
    ///
    /// They committed without waiting for their flush (`synchronous_commit = off`), so the append lock,
    /// which serialises appends until they commit, is not held through a flush: a batch over n
    /// collections pays one flush instead of n in a row, and other instances' appends go on while this
    /// one's flush runs (PostgreSQL's group commit shares flushes that overlap). Nothing is answered
    /// before the flush: a client hears of its command only once the command is durable. Until then other
    /// sessions may already see the events (docs/design.md, "Durability").
    ///
    /// The flush covers only commits of the same run of the server, so only those made on the
    /// connection it runs on: a commit made before the connection was re-established (the server
    /// restarted in between, say) may be gone, and its outcome is unknown.
    private func answerWhenDurable(_ committedBatch: CommittedBatch, on connection: PostgresConnection) async {
        guard !committedBatch.answers.isEmpty else { return }
        let unknown = LedgerError(
            .serviceUnavailable, "The command's outcome is unknown; retry the request with the same ClientRequestToken")
        await beforeFlush()
        // The number of the connection the flush ran on; nil when it failed.
        let flushedOn: Int?
        do {
            flushedOn = try await connection.run { session in
                try session.query(EventLog.flushSQL)
                return session.connectionNumber
            }
        } catch {
            logger.error("flushing a command batch failed; its outcomes are unknown", metadata: ["error": "\(error)"])
            flushedOn = nil
        }
        if committedBatch.answers.allSatisfy({ $0.connection == flushedOn }) {
            // Before anyone is answered: a client's next read waits for the projector to fold what this
            // processor committed (`committedPosition`), which must already include what it was told of.
            if let lastPosition = committedBatch.lastPosition { committed.store(lastPosition, ordering: .releasing) }
            onCommitted()
        } else if flushedOn != nil {
            logger.error("the database connection was re-established after a batch committed; its outcomes are unknown")
        }
        for answer in committedBatch.answers {
            answer.pending.answer(answer.connection == flushedOn ? answer.outcome : .answered(.failure(unknown)))
        }
    }

    /// Runs one batch's transaction, committed without waiting for its WAL flush (`answerWhenDurable`).
    /// With `deferring`, its last writes and `COMMIT` are left pending in the session
    /// (`PostgresSession.transaction(_:committingLater:)`).
    private func transaction(
        _ submissions: [CommandSubmission], collectionId: String, in session: PostgresSession, context: ServiceContext,
        deferring: Bool
    ) throws -> CommandBatch.Result {
        try withSpan("PostgreSQL transaction", context: context, ofKind: .client) { span in
            span.attributes["db.system"] = "postgresql"
            span.attributes["faceledger.collection"] = collectionId
            span.attributes["faceledger.commands"] = submissions.count
            // Reconnects if the database closed the connection since the batch's previous transaction.
            try session.ensureConnected()
            let body = {
                let result = try CommandBatch.run(
                    submissions, collectionId: collectionId, biometrics: self.biometrics,
                    first: [PostgresStatement("SET LOCAL synchronous_commit = off")], in: session)
                return (result, result.finishing)
            }
            return try deferring ? session.transaction(committingLater: body) : session.transaction(committingWith: body)
        }
    }

    /// True for failures that a command's content can cause (a value the database refuses, a
    /// constraint, a trigger raising): splitting the batch finds the culprit. Not for failures of the
    /// database as a whole (connection, lock or statement timeouts, shutdown, resources), where
    /// retrying halves would only multiply the wait.
    static func mayBeCausedByOneCommand(_ error: any Error) -> Bool {
        guard let error = error as? PostgresError else { return !(error is CancellationError) }
        switch error.code {
        case .server, .client:
            guard let state = error.sqlState?.code else { return true }
            return !["08", "53", "55", "57", "58", "40", "25"].contains(String(state.prefix(2)))
        case .connectionFailed, .connectionLost, .poolTimeout, .closed, .decoding:
            return false
        }
    }
}

/// Whether `CommandProcessor.run()` warmed up: `ready()` waits for it.
private final class Startup: Sendable {
    private enum State {
        case starting(waiters: [UUID: CheckedContinuation<Void, any Error>])
        case ended(Result<Void, any Error>)
    }

    private let state = Mutex(State.starting(waiters: [:]))

    func end(_ result: Result<Void, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            guard case .starting(let waiters) = state else { return [] }
            state = .ended(result)
            return Array(waiters.values)
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    /// Waits for `end`; cancellation ends the wait with `CancellationError`.
    func wait() async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { state -> Result<Void, any Error>? in
                    switch state {
                    case .ended(let result): return result
                    case .starting(var waiters):
                        if Task.isCancelled { return .failure(CancellationError()) }
                        waiters[id] = continuation
                        state = .starting(waiters: waiters)
                        return nil
                    }
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard case .starting(var waiters) = state, let waiter = waiters.removeValue(forKey: id) else { return nil }
                state = .starting(waiters: waiters)
                return waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }
}
