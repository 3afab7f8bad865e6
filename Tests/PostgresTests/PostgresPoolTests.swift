import EmbeddedPostgres
import Foundation
import Postgres
import Testing
import TestSupport

@Suite("libpq layer: pool, listener, reconnect")
struct PostgresPoolTests {
    @Test("the pool never opens more than its bound and serves every waiter")
    func bounded() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            let pool = PostgresPool(conninfo: conninfo, maxConnections: 3)
            defer { Task { await pool.close() } }
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
        }
    }

    @Test("a caller that cannot get a connection in time gets poolTimeout")
    func waitTimeout() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            let pool = PostgresPool(conninfo: conninfo, maxConnections: 1, acquireTimeout: .milliseconds(200))
            defer { Task { await pool.close() } }
            let holder = Task { try await pool.run { try $0.query("SELECT pg_sleep(2)") } }
            // Wait until the holder really holds the only connection.
            while try await poolIsBusy(conninfo) == false { try await Task.sleep(for: .milliseconds(10)) }
            let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
            #expect(error?.code == .poolTimeout)
            _ = try await holder.value
            #expect(try await pool.query("SELECT 1").count == 1)
        }
    }

    @Test("closing the pool waits for a connection lent out to come back, and closes it")
    func closeWaitsForLentConnections() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            let pool = PostgresPool(conninfo: conninfo, maxConnections: 1)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await pool.run { try $0.query("SELECT pg_sleep(2)") } }
                while try await poolIsBusy(conninfo) == false { try await Task.sleep(for: .milliseconds(10)) }
                await pool.close()
                #expect(pool.usage.open == 0)
                // The borrower was done before close returned.
                #expect(try await poolIsBusy(conninfo) == false)
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

    private func poolIsBusy(_ conninfo: String) async throws -> Bool {
        let probe = try await PostgresConnection.connect(conninfo)
        defer { Task { await probe.close() } }
        let rows = try await probe.query(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE $1 AND pid <> pg_backend_pid()",
            ["SELECT pg_sleep(2)%"])
        return try rows[0].decode(Int.self, at: 0) > 0
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
