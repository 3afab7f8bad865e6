import EmbeddedPostgres
import Foundation
import Postgres
import Synchronization
import TestSupport
import Testing

@Suite("libpq layer: pool, listener, reconnect")
struct PostgresPoolTests {
    @Test("the pool never opens more than its bound and serves every waiter")
    func bounded() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            let pool = PostgresPool(conninfo: conninfo, maxConnections: 3)
            let backends = try await withThrowingTaskGroup(of: Int32.self) { group in
                for _ in 0..<30 {
                    group.addTask {
                        try await pool.run { session in
                            try session.query("SELECT pg_sleep(0.01)")
                            return try session.query("SELECT pg_backend_pid()")[0].decode(Int32.self, at: 0)
                        }
                    }
                }
                return try await group.reduce(into: Set<Int32>()) { $0.insert($1) }
            }
            #expect(backends.count <= 3)
            #expect(backends.count >= 1)
            await pool.close()
        }
    }

    @Test("a caller that cannot get a connection in time gets poolTimeout")
    func waitTimeout() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            let pool = PostgresPool(conninfo: conninfo, maxConnections: 1, acquireTimeout: .milliseconds(200))
            let gate = try await Gate.closed(conninfo)
            try await withThrowingTaskGroup(of: Void.self) { group in
                // The holder takes the only connection and waits at the gate until the test opens it.
                group.addTask { try await pool.run { try Gate.pass($0) } }
                try await gate.waitForSomeoneWaiting()
                let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
                #expect(error?.code == .poolTimeout)
                try await gate.open()
                try await group.waitForAll()
            }
            #expect(try await pool.query("SELECT 1").count == 1)
            await pool.close()
        }
    }

    @Test("closing the pool waits for a connection lent out to come back, and closes it")
    func closeWaitsForLentConnections() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            let pool = PostgresPool(conninfo: conninfo, maxConnections: 1)
            let gate = try await Gate.closed(conninfo)
            let borrowerDone = Flag()
            let closing = Flag()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Set before the connection goes back to the pool: after `run` returns, the closing
                    // task may already have resumed, before this task does.
                    try await pool.run {
                        try Gate.pass($0)
                        borrowerDone.set()
                    }
                }
                try await gate.waitForSomeoneWaiting()
                group.addTask {
                    closing.set()
                    await pool.close()
                    // The borrower was done before close returned.
                    #expect(borrowerDone.isSet)
                    #expect(pool.usage.open == 0)
                }
                while !closing.isSet { await Task.yield() }
                try await gate.open()
                try await group.waitForAll()
            }
            let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
            #expect(error?.code == .closed)
        }
    }

    @Test("as a service, the pool lends connections until its run ends, then is closed")
    func poolService() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            let pool = PostgresPool(conninfo: conninfo, maxConnections: 2)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await pool.run() }
                #expect(try await pool.query("SELECT 1").count == 1)
                #expect(pool.usage.open == 1)
                group.cancelAll()
                try await group.waitForAll()
            }
            #expect(pool.usage.open == 0)
            let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
            #expect(error?.code == .closed)
        }
    }

    @Test("the listener delivers notifications")
    func listener() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            let listener = PostgresListener(conninfo: conninfo, channels: ["test_channel"])
            let pool = PostgresPool(conninfo: conninfo, maxConnections: 1)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await listener.run() }
                var events = listener.events.makeAsyncIterator()
                #expect(await events.next() == .connected)
                try await pool.query("SELECT pg_notify($1, $2)", ["test_channel", "hello"])
                #expect(await events.next() == .notification(PostgresNotification(channel: "test_channel", payload: "hello")))
                group.cancelAll()
                try await group.waitForAll()
                #expect(await events.next() == nil, "the listener's events end with its run")
            }
            await pool.close()
        }
    }

    @Test("after the database restarts, the next query reconnects and succeeds; the listener comes back")
    func reconnectAfterRestart() async throws {
        let directory = try TestDatabase.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try EmbeddedPostgres(dataDirectory: directory.path)
        let conninfo = try await cluster.start()
        defer { try? cluster.stop() }

        let pool = PostgresPool(conninfo: conninfo, maxConnections: 2)
        let before = try await pool.query("SELECT pg_backend_pid()")[0].decode(Int32.self, at: 0)
        let listener = PostgresListener(conninfo: conninfo, channels: ["restart_test"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await listener.run() }
            var events = listener.events.makeAsyncIterator()
            #expect(await events.next() == .connected)

            try cluster.restart()

            let after = try await pool.query("SELECT pg_backend_pid()")[0].decode(Int32.self, at: 0)
            #expect(after != before)
            #expect(await events.next() == .connected)
            try await pool.query("SELECT pg_notify($1, $2)", ["restart_test", "back"])
            #expect(await events.next() == .notification(PostgresNotification(channel: "restart_test", payload: "back")))
            group.cancelAll()
        }
        await pool.close()
    }
}

/// A connection holding an advisory lock: whoever passes the gate (`pass`) waits on the lock until the
/// gate opens. It holds a pool's connection for exactly as long as a test needs, whatever the load.
private struct Gate {
    static let key: Int64 = 0x6761_7465
    let connection: PostgresConnection

    static func closed(_ conninfo: String) async throws -> Gate {
        let connection = try await PostgresConnection.connect(conninfo)
        try await connection.query("SELECT pg_advisory_lock($1)", [.int64(key)])
        return Gate(connection: connection)
    }

    /// On the caller's session: waits for the gate to open, then lets go of the lock again.
    static func pass(_ session: PostgresSession) throws {
        try session.query("SELECT pg_advisory_lock($1)", [.int64(key)])
        try session.query("SELECT pg_advisory_unlock($1)", [.int64(key)])
    }

    /// Returns once a session waits at the gate.
    func waitForSomeoneWaiting() async throws {
        while try await connection.query(
            """
            SELECT count(*) FROM pg_locks
            WHERE locktype = 'advisory' AND NOT granted AND objid::bigint = $1
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """, [.int64(Self.key)])[0].decode(Int.self, at: 0) == 0
        {
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func open() async throws {
        try await connection.query("SELECT pg_advisory_unlock($1)", [.int64(Self.key)])
        await connection.close()
    }
}

/// A flag one task sets and another reads.
private final class Flag: Sendable {
    private let value = Atomic(false)
    func set() { value.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}
