import NIOPosix

/// One PostgreSQL connection with a thread of its own.
///
/// libpq calls block, so they never run on Swift's cooperative pool or on an event loop: every use
/// of the connection is a closure that runs on the connection's dedicated thread, one at a time, so
/// no two queries can interleave on the underlying `PGconn`.
public final class PostgresConnection: Sendable {
    private let thread: NIOThreadPool
    private let session: SessionBox

    /// The session, only ever touched on `thread` (a pool of exactly one thread, FIFO).
    private final class SessionBox: @unchecked Sendable {
        let session: PostgresSession
        init(_ session: PostgresSession) { self.session = session }
    }

    /// Opens a connection from a libpq connection string or URI (`postgresql://user@host/db`).
    ///
    /// - Parameter reconnectTimeout: how long a use of the connection keeps retrying a database that
    ///   is down (restarting, say) before it fails with `connectionFailed`.
    /// - Parameter settings: timeouts and parameters applied on connecting and after every reconnect.
    public static func connect(
        _ conninfo: String, reconnectTimeout: Duration = .seconds(15), settings: SessionSettings = .none
    ) async throws -> PostgresConnection {
        let connection = PostgresConnection(conninfo: conninfo, reconnectTimeout: reconnectTimeout, settings: settings)
        do {
            try await connection.thread.runIfActive { [session = connection.session] in
                try session.session.ensureConnected()
            }
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    private init(conninfo: String, reconnectTimeout: Duration, settings: SessionSettings) {
        thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        session = SessionBox(PostgresSession(conninfo: conninfo, reconnectTimeout: reconnectTimeout, settings: settings))
    }

    /// Runs `body` with the session on the connection's thread, reconnecting first if the server went
    /// away since the last use.
    public func run<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        do {
            return try await thread.runIfActive { [session] in
                try session.session.ensureConnected()
                return try body(session.session)
            }
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            throw PostgresError(.closed)
        }
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> [PostgresRow] {
        try await run { try $0.query(sql, parameters) }
    }

    /// Closes the connection and stops its thread.
    public func close() async {
        _ = try? await thread.runIfActive { [session] in session.session.close() }
        try? await thread.shutdownGracefully()
    }
}

extension PostgresConnection {
    /// Runs `body` with a new connection to `conninfo`, closed (and the close awaited) when `body`
    /// returns or throws.
    public static func with<T>(
        _ conninfo: String, settings: SessionSettings = .none, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await connect(conninfo, settings: settings)
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }
}
