import Foundation
import Postgres
import TestSupport
import Testing

@Suite("libpq layer: session settings and parameter limits")
struct SessionSettingsTests {
    private func settings(_ connection: PostgresConnection) async throws -> [String] {
        let row = try await connection.query(
            """
            SELECT current_setting('lock_timeout'), current_setting('statement_timeout'),
                   current_setting('idle_in_transaction_session_timeout'), current_setting('synchronous_commit')
            """)[0]
        return try (0..<4).map { try row.decode(String.self, at: $0) }
    }

    @Test("a service session carries its timeouts, and gets them back after its backend is terminated")
    func timeoutsSurviveReconnect() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo, settings: SessionSettings.service(deadline: .milliseconds(1500)).durableCommits) {
                connection in
                let expected = ["1500ms", "30s", "10s", "on"]
                #expect(try await settings(connection) == expected)

                let pid = try await connection.query("SELECT pg_backend_pid()")[0].decode(Int32.self, at: 0)
                try await PostgresConnection.with(conninfo) { admin in
                    try await admin.query("SELECT pg_terminate_backend($1)", [.int32(pid)])
                    // The next use notices the closed connection, reconnects, and sets the parameters again.
                    var after: [String]?
                    for _ in 0..<50 where after == nil {
                        after = try? await settings(connection)
                    }
                    #expect(after == expected)
                    #expect(try await connection.query("SELECT pg_backend_pid()")[0].decode(Int32.self, at: 0) != pid)
                }
            }
        }
    }

    @Test("a lock held elsewhere makes a service session give up after its lock timeout, with SQLSTATE 55P03")
    func lockTimeout() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo) { holder in
                try await PostgresConnection.with(conninfo, settings: .service(deadline: .milliseconds(200))) { waiter in
                    try await holder.query("CREATE TABLE t (v int)")
                    // Hold the lock in an open transaction on the holder's thread while the waiter tries.
                    try await holder.query("BEGIN")
                    try await holder.query("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                    do {
                        try await waiter.query("SELECT * FROM t")
                        Issue.record("the query did not time out")
                    } catch let error as PostgresError {
                        #expect(error.isTimeout && error.sqlState == .lockNotAvailable)
                        #expect(!error.isConnectivityProblem)
                    }
                    try await holder.query("COMMIT")
                    #expect(try await waiter.query("SELECT * FROM t").isEmpty)
                }
            }
        }
    }

    @Test("a parameter past PostgreSQL's 1 GiB field limit is refused before libpq, without trapping on Int32")
    func oversizeParameter() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                // 2 GiB: its length does not fit libpq's `int`, where a plain Int32 conversion would trap.
                let huge = [UInt8](repeating: 7, count: 1 << 31)
                await #expect(throws: PostgresError.self) {
                    try await connection.query("SELECT length($1::bytea)", [.bytea(huge)])
                }
                let one = try await connection.query("SELECT 1")[0].decode(Int.self, at: 0)
                #expect(one == 1)
            }
        }
    }
}
