import Foundation
import ServiceLifecycle
import Synchronization

/// A bounded pool of connections. A caller waits for a free connection at most `acquireTimeout`,
/// then gets `PostgresError(.poolTimeout)`.
///
/// Connections open on demand. As a service, the pool closes them when `run()` ends (graceful
/// shutdown or cancellation); outside a service group, its owner calls `close()`.
public final class PostgresPool: Service, Sendable {
    public let conninfo: String
    public let maxConnections: Int
    public let acquireTimeout: Duration
    private let reconnectTimeout: Duration
    private let settings: SessionSettings
    private let state = Mutex(State())
    /// Told how long each acquisition waited (for the wait-time histogram of `/metrics`).
    private let observeWait: @Sendable (Duration) -> Void

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: [(id: UInt64, continuation: CheckedContinuation<PostgresConnection, any Error>)] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
        /// Who waits in `close()` for the connections lent out to come back and be closed.
        var drained: [CheckedContinuation<Void, Never>] = []
    }

    /// What `acquire` must do once the lock is released.
    private enum Acquisition {
        case use(PostgresConnection)
        case open
        case wait
        case fail(PostgresError)
    }

    public init(
        conninfo: String, maxConnections: Int = 8, acquireTimeout: Duration = .seconds(10),
        reconnectTimeout: Duration = .seconds(15), settings: SessionSettings = .none,
        observeWait: @escaping @Sendable (Duration) -> Void = { _ in }
    ) {
        precondition(maxConnections > 0)
        self.observeWait = observeWait
        self.conninfo = conninfo
        self.maxConnections = maxConnections
        self.acquireTimeout = acquireTimeout
        self.reconnectTimeout = reconnectTimeout
        self.settings = settings
    }

    /// Lends a connection to `body` and takes it back afterwards.
    public func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        let result: T
        do {
            result = try await body(connection)
        } catch {
            await release(connection)
            throw error
        }
        await release(connection)
        return result
    }

    /// Runs `body` with a session of a pooled connection, on that connection's thread.
    public func run<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        try await withConnection { try await $0.run(body) }
    }

    /// Runs one statement on a pooled connection and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> [PostgresRow] {
        try await run { try $0.query(sql, parameters) }
    }

    /// How the pool's connections are used now.
    public struct Usage: Sendable, Hashable {
        /// Connections open (lent out or idle).
        public var open: Int
        /// Connections lent out.
        public var inUse: Int
        /// Callers waiting for one.
        public var waiting: Int
    }

    public var usage: Usage {
        state.withLock { Usage(open: $0.open, inUse: $0.open - $0.idle.count, waiting: $0.waiters.count) }
    }

    private func acquire() async throws -> PostgresConnection {
        let started = ContinuousClock.now
        let connection = try await acquireNow()
        observeWait(ContinuousClock.now - started)
        return connection
    }

    private func acquireNow() async throws -> PostgresConnection {
        let next: Acquisition = state.withLock { state in
            if state.closed { return .fail(PostgresError(.closed)) }
            if let connection = state.idle.popLast() { return .use(connection) }
            if state.open < maxConnections {
                state.open += 1
                return .open
            }
            return .wait
        }
        switch next {
        case .use(let connection): return connection
        case .fail(let error): throw error
        case .open:
            do {
                return try await PostgresConnection.connect(conninfo, reconnectTimeout: reconnectTimeout, settings: settings)
            } catch {
                connectionGone()
                throw error
            }
        case .wait:
            return try await waitForConnection()
        }
    }

    /// Waits for a connection to come back, at most `acquireTimeout`. The deadline fails the waiter
    /// unless a connection was handed to it first; then it is used.
    private func waitForConnection() async throws -> PostgresConnection {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let deadline = ContinuousClock.now + acquireTimeout
        return try await withThrowingTaskGroup(of: PostgresConnection?.self) { group in
            group.addTask { try await self.enqueueWaiter(id, deadline: deadline) }
            group.addTask {
                try? await Task.sleep(until: deadline, clock: .continuous)
                self.failWaiter(id, with: PostgresError(.poolTimeout))
                return nil
            }
            while let next = try await group.next() {
                if let connection = next {
                    group.cancelAll()
                    return connection
                }
            }
            throw PostgresError(.poolTimeout)  // unreachable: the waiter either gets a connection or fails
        }
    }

    /// Joins the waiters until `failWaiter` or a connection handed over. A waiter that comes after
    /// its deadline (or its cancellation) fails at once: the timer (or the cancellation handler) may
    /// have looked for it before it was there.
    private func enqueueWaiter(_ id: UInt64, deadline: ContinuousClock.Instant) async throws -> PostgresConnection {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let refusal = state.withLock { state -> (any Error)? in
                    if state.closed { return PostgresError(.closed) }
                    if let connection = state.idle.popLast() {
                        continuation.resume(returning: connection)
                    } else if Task.isCancelled {
                        return CancellationError()
                    } else if ContinuousClock.now >= deadline {
                        return PostgresError(.poolTimeout)
                    } else {
                        state.waiters.append((id, continuation))
                    }
                    return nil
                }
                if let refusal { continuation.resume(throwing: refusal) }
            }
        } onCancel: {
            self.failWaiter(id, with: CancellationError())
        }
    }

    private func failWaiter(_ id: UInt64, with error: any Error) {
        let waiter = state.withLock { state -> CheckedContinuation<PostgresConnection, any Error>? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
        waiter?.resume(throwing: error)
    }

    /// Takes a connection back: to a waiter, to the idle ones, or, once the pool is closed, closed
    /// here (the last one lets `close()` return).
    private func release(_ connection: PostgresConnection) async {
        enum Next {
            case handOver(CheckedContinuation<PostgresConnection, any Error>)
            case keep, close
        }
        let next = state.withLock { state -> Next in
            if state.closed { return .close }
            if !state.waiters.isEmpty { return .handOver(state.waiters.removeFirst().continuation) }
            state.idle.append(connection)
            return .keep
        }
        switch next {
        case .handOver(let waiter): waiter.resume(returning: connection)
        case .keep: break
        case .close:
            await connection.close()
            connectionGone()
        }
    }

    /// Counts a connection closed (or never opened); the last one after `close()` lets it return.
    private func connectionGone() {
        let drained = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open -= 1
            guard state.closed, state.open == 0 else { return [] }
            defer { state.drained = [] }
            return state.drained
        }
        drained.forEach { $0.resume() }
    }

    /// Refuses new work, fails waiters and closes idle connections, then waits until the connections
    /// still lent out have come back and been closed.
    public func close() async {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            state.open -= state.idle.count
            defer {
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: PostgresError(.closed)) }
        for connection in idle { await connection.close() }
        await withCheckedContinuation { (drained: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state in
                if state.open == 0 { return true }
                state.drained.append(drained)
                return false
            }
            if done { drained.resume() }
        }
    }

    /// Lends connections until graceful shutdown or cancellation, then closes the pool (`close()`).
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}

extension PostgresPool {
    /// Runs `body` with this pool, then closes the pool (once the connections `body` lent out are
    /// back), whether `body` returns or throws: for a pool that no service runs.
    public func use<T>(_ body: (PostgresPool) async throws -> T) async throws -> T {
        do {
            let result = try await body(self)
            await close()
            return result
        } catch {
            await close()
            throw error
        }
    }
}
