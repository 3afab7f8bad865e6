import Foundation
import NIOConcurrencyHelpers

/// A bounded pool of connections. A caller waits for a free connection at most `acquireTimeout`,
/// then gets `PostgresError(.poolTimeout)`.
public final class PostgresPool: Sendable {
    public let conninfo: String
    public let maxConnections: Int
    public let acquireTimeout: Duration
    private let reconnectTimeout: Duration
    private let settings: SessionSettings
    private let state = NIOLockedValueBox(State())
    /// Told how long each acquisition waited (for the wait-time histogram of `/metrics`).
    private let observeWait: @Sendable (Duration) -> Void

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: [(id: UInt64, continuation: CheckedContinuation<PostgresConnection, any Error>)] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
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
        defer { release(connection) }
        return try await body(connection)
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
        state.withLockedValue { Usage(open: $0.open, inUse: $0.open - $0.idle.count, waiting: $0.waiters.count) }
    }

    private func acquire() async throws -> PostgresConnection {
        let started = ContinuousClock.now
        let connection = try await acquireNow()
        observeWait(ContinuousClock.now - started)
        return connection
    }

    private func acquireNow() async throws -> PostgresConnection {
        let next: Acquisition = state.withLockedValue { state in
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
                state.withLockedValue { $0.open -= 1 }
                throw error
            }
        case .wait:
            return try await waitForConnection()
        }
    }

    private func waitForConnection() async throws -> PostgresConnection {
        let id = state.withLockedValue { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timeout = Task { [acquireTimeout] in
            try await Task.sleep(for: acquireTimeout)
            self.failWaiter(id, with: PostgresError(.poolTimeout))
        }
        defer { timeout.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let enqueued = state.withLockedValue { state in
                    if state.closed { return false }
                    if let connection = state.idle.popLast() {
                        continuation.resume(returning: connection)
                    } else {
                        state.waiters.append((id, continuation))
                    }
                    return true
                }
                if !enqueued { continuation.resume(throwing: PostgresError(.closed)) }
            }
        } onCancel: {
            self.failWaiter(id, with: CancellationError())
        }
    }

    private func failWaiter(_ id: UInt64, with error: any Error) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<PostgresConnection, any Error>? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
        waiter?.resume(throwing: error)
    }

    private func release(_ connection: PostgresConnection) {
        enum Next { case handOver(CheckedContinuation<PostgresConnection, any Error>), keep, close }
        let next = state.withLockedValue { state -> Next in
            if state.closed { return .close }
            if !state.waiters.isEmpty { return .handOver(state.waiters.removeFirst().continuation) }
            state.idle.append(connection)
            return .keep
        }
        switch next {
        case .handOver(let waiter): waiter.resume(returning: connection)
        case .keep: break
        case .close: Task { await connection.close() }
        }
    }

    /// Refuses new work, fails waiters and closes idle connections; connections still lent out are
    /// closed when they come back.
    public func close() async {
        let (idle, waiters) = state.withLockedValue { state in
            state.closed = true
            defer { state.idle = []; state.waiters = [] }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: PostgresError(.closed)) }
        for connection in idle { await connection.close() }
    }
}
