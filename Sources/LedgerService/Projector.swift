import AsyncAlgorithms
import EventLog
import Foundation
import LedgerDomain
import Logging
import Postgres
import ServiceLifecycle
import Synchronization

/// Folds the log into the read models (`rm_collections`, `rm_users`, `rm_faces`) with the same
/// `evolve` as the command side, writing the touched rows and its checkpoint in one transaction. It
/// keeps no state of the ledger: each batch loads the rows its events name (`StateRows.fold`), so
/// starting or taking over costs one read of the checkpoint, whatever the length of the log.
///
/// It wakes on NOTIFY, on a poke from this process, and every `pollInterval` (notifications are only
/// hints). One projector is active per database: the owner of the lease in its `projector_checkpoints`
/// row (migrations/004_projector_lease.sql); the others stand by and take the lease over when its
/// owner's connection is gone or its lease expired. Every batch re-checks ownership in its own
/// transaction (`projector_claim`), so a projector whose session was silently re-established, or that
/// stalled past its lease, never writes a batch it does not own.
public final class Projector: Service, Sendable {
    public static let name = "read_models"

    /// This instance's name in the lease: host, process and a random id, unique per process.
    public let owner: String
    private let conninfo: String
    private let logger: Logger
    private let pollInterval: Duration
    private let lease: Duration
    private let settings: SessionSettings
    private let biometrics: Biometrics
    private let pokes = Pokes()
    private let position = Atomic<Int64>(0)
    private let waiters = Mutex(Waiters())
    private let gather: Duration

    /// Reads waiting for a fold, and the projector's gathering pause, which the first of them ends.
    private struct Waiters {
        var reads: [(id: UUID, position: Int64, continuation: CheckedContinuation<Void, Never>)] = []
        var gathering: CheckedContinuation<Void, Never>?
    }

    /// - Parameter lease: how long the lease lasts without renewal; the owner renews it with every
    ///   batch and at least every `lease / 5` while idle. It only matters for an owner that stalls
    ///   with its connection open: one whose connection is gone is taken over at once.
    /// - Parameter settings: the projector session's timeouts and keepalives (it adds `keyLookups`
    ///   itself). A lock wait that times out (behind a rebuild's swap, say) only restarts the run from
    ///   the checkpoint.
    /// - Parameter gather: how long a wake-up waits for more commits before folding, unless a read
    ///   waits for the fold. Under load, commits come one small transaction after another (one per
    ///   collection and batch); folding each alone cost the projector a transaction apiece, about as
    ///   much database CPU as the commands themselves. Reads that wait for their own writes end the
    ///   pause at once, so it delays only what nobody waits for.
    public init(
        conninfo: String, logger: Logger, biometrics: Biometrics, pollInterval: Duration = .milliseconds(500),
        lease: Duration = .seconds(5), gather: Duration = .milliseconds(20), settings: SessionSettings = .none
    ) {
        self.gather = gather
        self.conninfo = conninfo
        self.biometrics = biometrics
        // Its lookups planned for their keys.
        self.settings = settings.keyLookups
        self.logger = logger
        self.pollInterval = pollInterval
        self.lease = lease
        owner = "\(Self.hostName()) pid \(ProcessInfo.processInfo.processIdentifier) \(UUID().uuidString.prefix(8))"
    }

    /// The host's name as the kernel has it (`ProcessInfo.hostName` may wait for DNS).
    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown-host" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Asks the projector to look for new events now.
    public func poke() { pokes.poke() }

    /// The last position folded into the read models by this projector.
    public var foldedPosition: Int64 { position.load(ordering: .acquiring) }

    /// Waits until the read models include `target`, or `timeout` passes (a paused or standby
    /// projector must not stall reads forever: they are then served as they are, statuses showing
    /// what is not folded yet). Gives a client its own writes back on its next read.
    public func waitUntilFolded(_ target: Int64, timeout: Duration = .seconds(1)) async {
        guard foldedPosition < target else { return }
        poke()
        let id = UUID()
        // Whichever ends first, the fold or the timeout, ends the other.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForFold(of: target, id: id) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Waits until `advance` passes `target`; cancellation ends the wait.
    private func waitForFold(of target: Int64, id: UUID) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let (ready, gathering) = waiters.withLock { waiters -> (Bool, CheckedContinuation<Void, Never>?) in
                    if foldedPosition >= target || Task.isCancelled { return (true, nil) }
                    waiters.reads.append((id, target, continuation))
                    return (false, waiters.gathering.take())
                }
                if ready { continuation.resume() }
                gathering?.resume()
            }
        } onCancel: {
            resumeWaiters { waiter in waiter.id == id }
        }
    }

    private func advance(to folded: Int64) {
        position.store(folded, ordering: .releasing)
        resumeWaiters { $0.position <= folded }
    }

    private func resumeWaiters(where done: ((id: UUID, position: Int64, continuation: CheckedContinuation<Void, Never>)) -> Bool) {
        let ready = waiters.withLock { waiters in
            let ready = waiters.reads.filter(done)
            waiters.reads.removeAll(where: done)
            return ready
        }
        ready.forEach { $0.continuation.resume() }
    }

    /// Waits `gather` for more commits to fold with the ones just announced, or less: a read waiting
    /// for a fold, or cancellation, ends the pause.
    private func gatherCommits() async {
        guard gather > .zero else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: self.gather) }
            group.addTask { await self.untilAReadWaits() }
            await group.next()
            group.cancelAll()
        }
    }

    private func untilAReadWaits() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let waiting = waiters.withLock { waiters -> Bool in
                    if !waiters.reads.isEmpty || Task.isCancelled { return true }
                    waiters.gathering = continuation
                    return false
                }
                if waiting { continuation.resume() }
            }
        } onCancel: {
            waiters.withLock { $0.gathering.take() }?.resume()
        }
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

    /// One run over one connection and one listener, both closed before it returns.
    private func runConnected() async throws {
        try await PostgresConnection.with(conninfo, settings: settings) { try await runListening(on: $0) }
    }

    private func runListening(on connection: PostgresConnection) async throws {
        let listener = PostgresListener(conninfo: conninfo, channels: [EventLog.notificationChannel], settings: settings)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await listener.run() }
            // A fresh subscription to the pokes for every run (see `Pokes`).
            var wakeUps = Self.wakeUps(listener.events.map { _ in () }, pokes.subscribe(), every: pollInterval)
                .makeAsyncIterator()
            defer { group.cancelAll() }  // stops the listener, whose end the group awaits
            while try await standBy(on: connection) {
                do {
                    try await lead(on: connection, wakeUps: &wakeUps)
                    return
                } catch is ProjectorLeaseLost {
                    logger.warning("another instance took over the projector lease; standing by")
                }
            }
        }
    }

    /// Waits until this instance owns the lease, meanwhile following the active projector's
    /// checkpoint so that reads here wait only for its progress. False when the service stops first.
    private func standBy(on connection: PostgresConnection) async throws -> Bool {
        let (owner, lease) = (self.owner, self.lease / .seconds(1))
        while true {
            let acquired = try await connection.run { session in try Self.acquire(owner: owner, lease: lease, in: session) }
            if acquired { return true }
            if Task.isShuttingDownGracefully || Task.isCancelled { return false }
            let checkpoint = try await connection.query(
                "SELECT position FROM projector_checkpoints WHERE projector = $1", [.text(Self.name)]
            ).first
            if let checkpoint { advance(to: try checkpoint.decode(Int64.self, at: 0)) }
            try? await Task.sleep(for: pollInterval)
        }
    }

    /// Projects as the owner of the lease until graceful shutdown; throws `ProjectorLeaseLost` when
    /// another instance took the lease over.
    private func lead(on connection: PostgresConnection, wakeUps: inout WakeUps.AsyncIterator) async throws {
        let state = ProjectorState()
        try await reload(state, on: connection)
        while true {
            try await project(state, on: connection)
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            // A notification, a poke or the poll interval, whichever comes first; then a moment for
            // more commits to join (`gather`).
            _ = await wakeUps.next()
            if !Task.isShuttingDownGracefully { await gatherCommits() }
            if Task.isShuttingDownGracefully {
                try await project(state, on: connection)  // flush what was appended meanwhile
                return
            }
        }
    }

    /// Resumes from the checkpoint: the read models are the projector's state.
    private func reload(_ state: ProjectorState, on connection: PostgresConnection) async throws {
        let (owner, lease) = (self.owner, self.lease / .seconds(1))
        state.position = try await connection.run { session in
            try Self.renew(owner: owner, lease: lease, in: session)
            return try session.query("SELECT position FROM projector_checkpoints WHERE projector = $1", [.text(Self.name)])
                .first.map { try $0.decode(Int64.self, at: 0) } ?? 0
        }
        state.renewed = .now
        advance(to: state.position)
    }

    /// Folds and writes everything after the state's position, batch by batch, then renews the lease
    /// if no batch did lately. A checkpoint moved by someone else (a rebuild's swap) makes this
    /// projector reload from it; a lease taken over throws `ProjectorLeaseLost`. After any other
    /// failure the caller starts over from the checkpoint.
    func project(_ state: ProjectorState, on connection: PostgresConnection) async throws {
        let (owner, lease, biometrics) = (self.owner, self.lease / .seconds(1), self.biometrics)
        while true {
            let folded: Bool
            do {
                folded = try await connection.run { session in
                    try Self.projectBatch(state, owner: owner, lease: lease, biometrics: biometrics, in: session)
                }
            } catch let error as PostgresError where error.sqlState == Self.checkpointMoved {
                logger.info("read models were replaced; reloading the projector from the new checkpoint")
                try await reload(state, on: connection)
                continue
            } catch let error as PostgresError where error.sqlState == Self.leaseLost {
                throw ProjectorLeaseLost()
            }
            if !folded { break }
            advance(to: state.position)
        }
        if ContinuousClock.now - state.renewed >= self.lease / 5 {
            try await connection.run { session in try Self.renew(owner: owner, lease: lease, in: session) }
            state.renewed = .now
        }
    }

    /// What `projector_claim()` raises when the checkpoint is not where this projector left it.
    static let checkpointMoved = SQLState("FL412")
    /// What `projector_claim()` raises when the caller does not own the lease.
    static let leaseLost = SQLState("FL409")

    /// Takes the lease if it is free, or renews it; true when `owner` holds it.
    static func acquire(owner: String, lease: Double, in session: PostgresSession) throws -> Bool {
        try session.query("SELECT projector_acquire($1, $2, $3)", [.text(name), .text(owner), .float64(lease)])[0].decode(Bool.self, at: 0)
    }

    /// Renews the lease of its owner; throws `ProjectorLeaseLost` when another instance holds it.
    static func renew(owner: String, lease: Double, in session: PostgresSession) throws {
        guard try acquire(owner: owner, lease: lease, in: session) else { throw ProjectorLeaseLost() }
    }

    /// One batch: read up to 1000 events, then claim the checkpoint (ownership and position, which
    /// renews the lease), fold them into the rows they touch and move the checkpoint, all in one
    /// transaction. Returns false when there was nothing to fold.
    static func projectBatch(
        _ state: ProjectorState, owner: String, lease: Double, biometrics: Biometrics, in session: PostgresSession
    ) throws -> Bool {
        let start = state.position
        let events = try biometrics.open(EventLog.readForFold(after: start, limit: 1000, in: session), in: session)
        guard let last = events.last else { return false }
        // The rows and the checkpoint are written with the COMMIT, in one round trip.
        try session.transaction(committingWith: {
            try session.query("SELECT projector_claim($1, $2, $3, $4)", [.text(name), .int64(start), .text(owner), .float64(lease)])
            let writes = try StateRows.statements(folding: events.ledgerEvents(), into: .readModels, in: session)
            return (
                (),
                writes + [
                    PostgresStatement("UPDATE projector_checkpoints SET position = $2 WHERE projector = $1", [.text(name), .int64(last.position)])
                ]
            )
        })
        state.position = last.position
        state.renewed = .now
        return true
    }

    /// The projector's wake-ups (see `wakeUps`).
    typealias WakeUps = AsyncBufferSequence<
        AsyncMerge3Sequence<
            AsyncMapSequence<AsyncStream<PostgresListener.Event>, Void>, AsyncStream<Void>,
            AsyncMapSequence<AsyncTimerSequence<ContinuousClock>, Void>
        >
    >

    /// One sequence of wake-ups: notifications, pokes, and a tick every `interval`. Those that come
    /// while a batch runs count as one: the next read finds everything they announced.
    static func wakeUps(
        _ notifications: AsyncMapSequence<AsyncStream<PostgresListener.Event>, Void>, _ pokes: AsyncStream<Void>,
        every interval: Duration
    ) -> WakeUps {
        merge(notifications, pokes, AsyncTimerSequence(interval: interval, clock: .continuous).map { _ in () })
            .buffer(policy: .bufferingLatest(1))
    }
}

/// Another projector instance owns the lease: this one stands by.
struct ProjectorLeaseLost: Error {}

/// This process's requests to look for new events now, delivered to the projector's current run.
///
/// Each run subscribes anew. An `AsyncStream` whose consumer is cancelled is finished for good, so a
/// single stream made once and consumed by successive runs went deaf after the first restart (a
/// lost connection, a lease lost and regained): later pokes were dropped and reads waited for the
/// next notification or tick.
final class Pokes: Sendable {
    private let current = Mutex<AsyncStream<Void>.Continuation?>(nil)

    func poke() { current.withLock { _ = $0?.yield() } }

    /// A stream of the pokes from now on; the previous subscription ends.
    func subscribe() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        current.withLock { previous in
            previous?.finish()
            previous = continuation
        }
        return stream
    }
}

/// Where the projector's run stands: touched only by its run loop, one batch at a time (on the
/// connection's thread while a batch runs), which is what makes the unchecked Sendable sound.
final class ProjectorState: @unchecked Sendable {
    /// The last position written to the read models.
    var position: Int64 = 0
    /// When this projector last renewed its lease.
    var renewed = ContinuousClock.now
}
