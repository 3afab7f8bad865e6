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
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.resumeWaiters { waiter in waiter.id == id }
        }
        defer { timer.cancel() }
        await withCheckedContinuation { continuation in
            let ready = waiters.withLock { waiters -> Bool in
                if foldedPosition >= target { return true }
                waiters.append((id, target, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
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
        while !(try await connection.query("SELECT pg_try_advisory_lock($1)", [.int64(Self.lockKey)])[0].decode(Bool.self, at: 0)) {
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            try? await Task.sleep(for: .seconds(1))
        }
        var folded = try await connection.run { session in try Self.load(in: session) }
        advance(to: folded.position)
        var iterator = wakeUps.makeAsyncIterator()
        while true {
            folded = try await project(folded, on: connection)
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            // A notification, a poke or the poll interval, whichever comes first.
            _ = await iterator.next()
            if Task.isShuttingDownGracefully {
                _ = try await project(folded, on: connection)  // flush what was appended meanwhile
                return
            }
        }
    }

    /// Folds and writes everything after `folded.position`, batch by batch.
    func project(_ start: FoldedState, on connection: PostgresConnection) async throws -> FoldedState {
        var folded = start
        while true {
            let before = folded
            let after = try await connection.run { session in try Self.projectBatch(before, in: session) }
            if after.position == before.position { return after }
            folded = after
            advance(to: folded.position)
        }
    }

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
    static func projectBatch(_ start: FoldedState, in session: PostgresSession) throws -> FoldedState {
        let events = try EventLog.read(after: start.position, limit: 1000, in: session)
        guard let last = events.last else { return start }
        var folded = start
        var collections = Set<String>()
        var users = Set<EntityKey>()
        var faces = Set<EntityKey>()
        var deletedCollections = Set<String>()
        for recorded in events {
            let (event, context) = try recorded.ledgerEvent()
            folded.state.evolve(event, context)
            collections.insert(context.collectionId)
            switch event {
            case .collectionDeleted: deletedCollections.insert(context.collectionId)
            case .userCreated(let e): users.insert(EntityKey(context.collectionId, e.userId))
            case .userDeleted(let e): users.insert(EntityKey(context.collectionId, e.userId))
            case .faceImported(let e, _): faces.insert(EntityKey(context.collectionId, e.faceId))
            case .faceDeleted(let e): faces.insert(EntityKey(context.collectionId, e.faceId))
            case .faceAssociated(let e):
                faces.insert(EntityKey(context.collectionId, e.faceId))
                users.insert(EntityKey(context.collectionId, e.userId))
            case .faceDisassociated(let e):
                faces.insert(EntityKey(context.collectionId, e.faceId))
                users.insert(EntityKey(context.collectionId, e.userId))
            default: break
            }
        }
        folded.position = last.position

        var statements: [PostgresStatement] = []
        for id in deletedCollections.sorted() {
            statements.append(PostgresStatement("DELETE FROM rm_users WHERE collection_id = $1", [.text(id)]))
            statements.append(PostgresStatement("DELETE FROM rm_faces WHERE collection_id = $1", [.text(id)]))
        }
        for id in collections.sorted() {
            if let collection = folded.state.collections[id] {
                statements.append(ReadModelRows.upsert(collection))
            } else {
                statements.append(PostgresStatement("DELETE FROM rm_collections WHERE collection_id = $1", [.text(id)]))
            }
        }
        for key in users.sorted() {
            if let collection = folded.state.collections[key.collectionId], let user = collection.users[key.id] {
                statements.append(ReadModelRows.upsert(user, in: collection))
            } else {
                statements.append(PostgresStatement("DELETE FROM rm_users WHERE collection_id = $1 AND user_id = $2",
                                                    [.text(key.collectionId), .text(key.id)]))
            }
        }
        for key in faces.sorted() {
            if let face = folded.state.collections[key.collectionId]?.faces[key.id] {
                statements.append(ReadModelRows.upsert(face, collectionId: key.collectionId))
            } else {
                statements.append(PostgresStatement("DELETE FROM rm_faces WHERE collection_id = $1 AND face_id = $2",
                                                    [.text(key.collectionId), .text(key.id)]))
            }
        }
        statements.append(PostgresStatement("""
            INSERT INTO projector_checkpoints (projector, position) VALUES ($1, $2)
            ON CONFLICT (projector) DO UPDATE SET position = excluded.position
            """, [.text(name), .int64(folded.position)]))
        _ = try session.pipeline(statements)
        return folded
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

/// The rows of the read models, from the folded state.
enum ReadModelRows {
    static func upsert(_ collection: Collection) -> PostgresStatement {
        PostgresStatement("""
            INSERT INTO rm_collections (collection_id, arn, created_at, created_position, face_count, user_count)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (collection_id) DO UPDATE SET arn = excluded.arn, created_at = excluded.created_at,
                created_position = excluded.created_position, face_count = excluded.face_count, user_count = excluded.user_count
            """, [.text(collection.collectionId), .text(collection.arn), .timestamp(collection.createdAt),
                  .int64(collection.createdPosition), .int64(Int64(collection.faces.count)), .int64(Int64(collection.users.count))])
    }

    static func upsert(_ user: User, in collection: Collection) -> PostgresStatement {
        let vector = collection.userVector(user).map { EmbeddingBytes.pack($0.map(Float.init)) }
        return PostgresStatement("""
            INSERT INTO rm_users (collection_id, user_id, created_at, face_count, user_vector) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (collection_id, user_id) DO UPDATE SET created_at = excluded.created_at,
                face_count = excluded.face_count, user_vector = excluded.user_vector
            """, [.text(collection.collectionId), .text(user.userId), .timestamp(user.createdAt),
                  .int64(Int64(user.faceIds.count)), vector.map(PostgresValue.bytea) ?? .null])
    }

    static func upsert(_ face: Face, collectionId: String) -> PostgresStatement {
        PostgresStatement("""
            INSERT INTO rm_faces (collection_id, face_id, user_id, external_image_id, image_id, confidence, embedding, indexed_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (collection_id, face_id) DO UPDATE SET user_id = excluded.user_id,
                external_image_id = excluded.external_image_id, image_id = excluded.image_id,
                confidence = excluded.confidence, embedding = excluded.embedding, indexed_at = excluded.indexed_at
            """, [.text(collectionId), .text(face.faceId), face.userId.map(PostgresValue.text) ?? .null,
                  face.externalImageId.map(PostgresValue.text) ?? .null, .text(face.imageId), .float64(face.confidence),
                  .bytea(EmbeddingBytes.pack(face.embedding)), .timestamp(face.indexedAt)])
    }
}
