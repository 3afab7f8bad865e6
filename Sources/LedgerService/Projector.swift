import EventLog
import Foundation
import LedgerDomain
import Logging
import Postgres
import ServiceLifecycle
import Synchronization

/// Folds the log into the read models (`rm_collections`, `rm_users`, `rm_faces`) with the same
/// `evolve` as the command side, writing the touched rows and its checkpoint in one transaction.
///
/// It wakes on NOTIFY, on a poke from this process, and every `pollInterval` (notifications are only
/// hints). One projector is active per database: it holds a session advisory lock; others wait.
public final class Projector: Service, Sendable {
    public static let name = "read_models"
    static let lockKey: Int64 = 0x464C_5072_6F6A_6563  // "FLProjec"

    private let conninfo: String
    private let logger: Logger
    private let pollInterval: Duration
    private let pokes: AsyncStream<Void>
    private let pokeContinuation: AsyncStream<Void>.Continuation
    private let position = Atomic<Int64>(0)
    private let waiters = Mutex<[(id: UUID, position: Int64, continuation: CheckedContinuation<Void, Never>)]>([])

    public init(conninfo: String, logger: Logger, pollInterval: Duration = .milliseconds(500)) {
        self.conninfo = conninfo
        self.logger = logger
        self.pollInterval = pollInterval
        (pokes, pokeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks the projector to look for new events now.
    public func poke() { pokeContinuation.yield() }

    /// The last position folded into the read models by this projector.
    public var foldedPosition: Int64 { position.load(ordering: .acquiring) }

    /// Waits until the read models include `target`, or `timeout` passes (a paused or standby
    /// projector must not stall reads forever: they are then served as they are, statuses showing
    /// what is not folded yet). Gives a client its own writes back on its next read.
    public func waitUntilFolded(_ target: Int64, timeout: Duration = .seconds(1)) async {
        guard foldedPosition < target else { return }
        poke()
        let id = UUID()
        var timer: Task<Void, Never>?
        await withCheckedContinuation { continuation in
            let ready = waiters.withLock { waiters -> Bool in
                if foldedPosition >= target { return true }
                waiters.append((id, target, continuation))
                return false
            }
            if ready {
                continuation.resume()
            } else {
                timer = Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    self?.resumeWaiters { waiter in waiter.id == id }
                }
            }
        }
        timer?.cancel()
    }

    private func advance(to folded: Int64) {
        position.store(folded, ordering: .releasing)
        resumeWaiters { $0.position <= folded }
    }

    private func resumeWaiters(where done: ((id: UUID, position: Int64, continuation: CheckedContinuation<Void, Never>)) -> Bool) {
        let ready = waiters.withLock { waiters in
            let ready = waiters.filter(done)
            waiters.removeAll(where: done)
            return ready
        }
        ready.forEach { $0.continuation.resume() }
    }

    /// Projects until graceful shutdown, then flushes what was appended meanwhile. A lost database
    /// connection is retried, starting again from the checkpoint.
    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await runConnected()
                return
            } catch {
                logger.warning("projector interrupted; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func runConnected() async throws {
        let connection = try await PostgresConnection.connect(conninfo)
        let listener = PostgresListener(conninfo: conninfo, channels: [EventLog.notificationChannel])
        defer { Task { await listener.stop(); await connection.close() } }
        let wakeUps = Self.wakeUps(listener.events.map { _ in () }, pokes, every: pollInterval)

        // Stand by until this instance holds the projector lock (it is released with the connection).
        // Meanwhile follow the active projector's checkpoint, so reads here wait only for its progress.
        while !(try await connection.query("SELECT pg_try_advisory_lock($1)", [.int64(Self.lockKey)])[0].decode(Bool.self, at: 0)) {
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            let checkpoint = try await connection.query(
                "SELECT position FROM projector_checkpoints WHERE projector = $1", [.text(Self.name)]).first
            if let checkpoint { advance(to: try checkpoint.decode(Int64.self, at: 0)) }
            try? await Task.sleep(for: pollInterval)
        }
        let state = ProjectorState()
        try await connection.run { session in state.folded = try Self.load(in: session) }
        advance(to: state.folded.position)
        var iterator = wakeUps.makeAsyncIterator()
        while true {
            try await project(state, on: connection)
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            // A notification, a poke or the poll interval, whichever comes first.
            _ = await iterator.next()
            if Task.isShuttingDownGracefully {
                try await project(state, on: connection)  // flush what was appended meanwhile
                return
            }
        }
    }

    /// Folds and writes everything after `folded.position`, batch by batch.
    /// Folds and writes everything after the state's position, batch by batch. A checkpoint moved by
    /// someone else (a rebuild's swap) makes this projector reload from it. Any other failure leaves
    /// the state unusable: the caller starts over from the checkpoint.
    func project(_ state: ProjectorState, on connection: PostgresConnection) async throws {
        while true {
            let folded: Bool
            do {
                folded = try await connection.run { session in try Self.projectBatch(state, in: session) }
            } catch let error as PostgresError where error.sqlState == Self.checkpointMoved {
                logger.info("read models were replaced; reloading the projector from the new checkpoint")
                try await connection.run { session in state.folded = try Self.load(in: session) }
                advance(to: state.folded.position)
                continue
            }
            if !folded { return }
            advance(to: state.folded.position)
        }
    }

    /// What `projector_claim()` raises when the checkpoint is not where this projector left it.
    static let checkpointMoved = SQLState("FL412")

    /// The state as of the checkpoint, folded from the log (the read models hold rows, not the state).
    static func load(in session: PostgresSession) throws -> FoldedState {
        let checkpoint = try session.query("SELECT position FROM projector_checkpoints WHERE projector = $1", [.text(name)])
            .first.map { try $0.decode(Int64.self, at: 0) } ?? 0
        var folded = FoldedState()
        while folded.position < checkpoint {
            let events = try EventLog.read(after: folded.position, limit: 5000, in: session).filter { $0.position <= checkpoint }
            guard let last = events.last else { break }
            try folded.state.fold(events)
            folded.position = last.position
        }
        folded.position = checkpoint
        return folded
    }

    /// One batch: fold up to 1000 events, then write the rows they touched and the checkpoint in one
    /// pipelined transaction.
    /// Returns false when there was nothing to fold. The state is folded in place (a copy per batch
    /// would cost more than the batch); when the write fails, it is ahead of the read models.
    static func projectBatch(_ state: ProjectorState, in session: PostgresSession) throws -> Bool {
        let start = state.folded.position
        let events = try EventLog.read(after: start, limit: 1000, in: session)
        guard !events.isEmpty else { return false }
        let touched = try state.folded.foldTracking(events)
        var statements = [PostgresStatement("SELECT projector_claim($1, $2)", [.text(name), .int64(start)])]
        statements += ReadModelRows.statements(for: state.folded.state, touched: touched, tables: .live)
        statements.append(PostgresStatement("""
            INSERT INTO projector_checkpoints (projector, position) VALUES ($1, $2)
            ON CONFLICT (projector) DO UPDATE SET position = excluded.position
            """, [.text(name), .int64(state.folded.position)]))
        _ = try session.pipeline(statements)
        return true
    }

    /// One stream of wake-ups: notifications, pokes, and a tick every `interval`.
    static func wakeUps(
        _ notifications: some AsyncSequence<Void, Never> & Sendable, _ pokes: AsyncStream<Void>, every interval: Duration
    ) -> AsyncStream<Void> {
        AsyncStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let tasks = [
                Task { for await _ in notifications { continuation.yield() } },
                Task { for await _ in pokes { continuation.yield() } },
                Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        continuation.yield()
                    }
                },
            ]
            continuation.onTermination = { _ in tasks.forEach { $0.cancel() } }
        }
    }
}

/// A user or face of a collection.
struct EntityKey: Hashable, Comparable {
    let collectionId: String
    let id: String
    init(_ collectionId: String, _ id: String) {
        self.collectionId = collectionId
        self.id = id
    }
    static func < (a: EntityKey, b: EntityKey) -> Bool { (a.collectionId, a.id) < (b.collectionId, b.id) }
}

/// The projector's folded state: touched only by its run loop, one batch at a time (on the
/// connection's thread while a batch runs), which is what makes the unchecked Sendable sound.
final class ProjectorState: @unchecked Sendable {
    var folded = FoldedState()
}
