import Foundation
import Postgres
import TestSupport
import Testing

@Suite("libpq layer: transactions, prepared statements, pipelines")
struct PostgresSessionTests {
    struct Rollback: Error {}

    @Test("a transaction commits when its body returns and rolls back when it throws")
    func transactions() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                try await connection.query("CREATE TABLE t (v text)")
                await #expect(throws: Rollback.self) {
                    try await connection.run { session in
                        try session.transaction {
                            try session.query("INSERT INTO t VALUES ($1)", ["lost"])
                            throw Rollback()
                        }
                    }
                }
                try await connection.run { session in
                    try session.transaction(.serializable) { try session.query("INSERT INTO t VALUES ($1)", ["kept"]) }
                }
                let values = try await connection.query("SELECT v FROM t").map { try $0.decode(String.self, at: 0) }
                #expect(values == ["kept"])
            }
        }
    }

    @Test("a transaction's BEGIN goes with its first statement, whichever kind it is, and an empty one sends nothing")
    func beginWithFirstStatement() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                try await connection.query("CREATE TABLE t (v text)")
                let firsts: [(String, @Sendable (PostgresSession, String) throws -> Void)] = [
                    ("query", { session, v in try session.query("INSERT INTO t VALUES ($1)", [.text(v)]) }),
                    ("pipeline", { session, v in _ = try session.pipeline([PostgresStatement("INSERT INTO t VALUES ($1)", [.text(v)])]) }),
                    // Fixed text only: the values of this test are "…-lost" and "…-kept".
                    ("script", { session, v in try session.executeScript("INSERT INTO t VALUES ('\(v)')") }),
                ]
                for (kind, first) in firsts {
                    await #expect(throws: Rollback.self, "\(kind)") {
                        try await connection.run { session in
                            try session.transaction {
                                try first(session, "\(kind)-lost")
                                // A second statement sees the first: they are in one transaction.
                                #expect(
                                    try session.query("SELECT count(*) FROM t WHERE v = $1", [.text("\(kind)-lost")])[0].decode(Int.self, at: 0) == 1)
                                throw Rollback()
                            }
                        }
                    }
                    try await connection.run { session in try session.transaction { try first(session, "\(kind)-kept") } }
                }
                // A first statement that fails rolls back, and the session goes on.
                await #expect(throws: PostgresError.self) {
                    try await connection.run { session in try session.transaction { try session.query("SELECT 1 / 0") } }
                }
                // An empty transaction sends nothing, and leaves nothing behind: a savepoint is then refused,
                // as outside any transaction.
                try await connection.run { session in try session.transaction {} }
                await #expect(throws: PostgresError.self) { try await connection.run { try $0.query("SAVEPOINT s") } }
                let values = try await connection.query("SELECT v FROM t ORDER BY v").map { try $0.decode(String.self, at: 0) }
                #expect(values == ["pipeline-kept", "query-kept", "script-kept"])
            }
        }
    }

    @Test("a transaction's last statements go with its COMMIT: all take effect, or, when one fails, none of the transaction does")
    func lastStatementsWithCommit() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                try await connection.query("CREATE TABLE t (v text PRIMARY KEY)")
                func values() async throws -> [String] {
                    try await connection.query("SELECT v FROM t ORDER BY v").map { try $0.decode(String.self, at: 0) }
                }
                let answer = try await connection.run { session in
                    try session.transaction(committingWith: {
                        try session.query("INSERT INTO t VALUES ('a')")
                        return (42, [PostgresStatement("INSERT INTO t VALUES ('b')"), PostgresStatement("INSERT INTO t VALUES ('c')")])
                    })
                }
                #expect(answer == 42)
                #expect(try await values() == ["a", "b", "c"])
                // Committed by the last pipeline: no transaction is left open (a savepoint is refused).
                await #expect(throws: PostgresError.self) { try await connection.run { try $0.query("SAVEPOINT s") } }

                // A last statement that fails: the body's statement is rolled back too, and the session goes on.
                let error = await #expect(throws: PostgresError.self) {
                    try await connection.run { session in
                        try session.transaction(committingWith: {
                            try session.query("INSERT INTO t VALUES ('d')")
                            return ((), [PostgresStatement("INSERT INTO t VALUES ('e')"), PostgresStatement("INSERT INTO t VALUES ('a')")])
                        })
                    }
                }
                #expect(error?.sqlState == .uniqueViolation)
                #expect(try await values() == ["a", "b", "c"])

                // No last statements: committed as any transaction.
                try await connection.run { session in
                    try session.transaction(committingWith: {
                        try session.query("INSERT INTO t VALUES ('f')")
                        return ((), [])
                    })
                }
                #expect(try await values() == ["a", "b", "c", "f"])
            }
        }
    }

    @Test("a commit left pending goes with the session's next round trip; refused there, it is reported as such and nothing after it runs")
    func commitLater() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                try await PostgresConnection.with(conninfo) { other in
                    try await connection.query("CREATE TABLE t (v text PRIMARY KEY)")
                    @Sendable func values() async throws -> [String] {
                        try await other.query("SELECT v FROM t ORDER BY v").map { try $0.decode(String.self, at: 0) }
                    }
                    @Sendable func later(_ first: String, _ last: String, in session: PostgresSession) throws {
                        try session.transaction(committingLater: {
                            try session.query("INSERT INTO t VALUES ($1)", [.text(first)])
                            return ((), [PostgresStatement("INSERT INTO t VALUES ($1)", [.text(last)])])
                        })
                    }
                    // Pending: nothing is committed until the next round trip, which carries the commit.
                    try await connection.run { try later("a", "b", in: $0) }
                    #expect(try await values() == [])
                    let seen = try await connection.run { session in
                        try session.transaction { try session.query("SELECT count(*) FROM t")[0].decode(Int.self, at: 0) }
                    }
                    #expect(seen == 2)
                    #expect(try await values() == ["a", "b"])

                    // Refused in the next transaction's first round trip: rolled back, and that transaction's
                    // statement did not run.
                    try await connection.run { try later("c", "a", in: $0) }
                    let refused = await #expect(throws: PostgresPendingCommitFailed.self) {
                        try await connection.run { session in
                            try session.transaction { try session.query("INSERT INTO t VALUES ('d')") }
                        }
                    }
                    #expect(refused?.error.sqlState == .uniqueViolation)
                    #expect(try await values() == ["a", "b"])

                    // The same when the commit is completed on its own; the session goes on, with no
                    // transaction left open.
                    try await connection.run { try later("e", "a", in: $0) }
                    await #expect(throws: PostgresPendingCommitFailed.self) {
                        try await connection.run { try $0.completePendingCommit() }
                    }
                    try await connection.run { try later("f", "g", in: $0) }
                    try await connection.run { try $0.completePendingCommit() }
                    #expect(try await values() == ["a", "b", "f", "g"])
                    await #expect(throws: PostgresError.self) { try await connection.run { try $0.query("SAVEPOINT s") } }
                }
            }
        }
    }

    @Test("a statement is prepared once per connection and then reused")
    func preparedStatements() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                for i in 0..<5 { _ = try await connection.query("SELECT $1::int8 + 1", [.int64(Int64(i))]) }
                let prepared = try await connection.query(
                    "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", ["SELECT $1::int8 + 1"])
                #expect(try prepared[0].decode(Int.self, at: 0) == 1)
            }
        }
    }

    @Test("a pipelined batch returns every result in order, and is atomic")
    func pipeline() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                try await connection.query("CREATE TABLE t (id int8 PRIMARY KEY, payload text)")
                // Large enough to fill socket buffers in both directions.
                let payload = String(repeating: "x", count: 4096)
                let inserts = (1...500).map { PostgresStatement("INSERT INTO t VALUES ($1, $2) RETURNING id", [.int64(Int64($0)), .text(payload)]) }
                let results = try await connection.run { try $0.pipeline(inserts + [PostgresStatement("SELECT count(*) FROM t")]) }
                #expect(results.count == 501)
                #expect(try results[41].rows[0].decode(Int64.self, at: 0) == 42)
                #expect(try results[500].rows[0].decode(Int.self, at: 0) == 500)

                let failing = [
                    PostgresStatement("INSERT INTO t VALUES ($1, $2)", [.int64(1000), "new"]),
                    PostgresStatement("INSERT INTO t VALUES ($1, $2)", [.int64(1), "duplicate"]),
                    PostgresStatement("INSERT INTO t VALUES ($1, $2)", [.int64(1001), "after"]),
                ]
                let error = await #expect(throws: PostgresError.self) { try await connection.run { try $0.pipeline(failing) } }
                #expect(error?.sqlState == .uniqueViolation)
                let count = try await connection.query("SELECT count(*) FROM t")[0].decode(Int.self, at: 0)
                #expect(count == 500)
            }
        }
    }

    @Test("one connection runs all its work on one dedicated thread")
    func dedicatedThread() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                var threads = Set<pthread_t>()
                for _ in 0..<20 {
                    threads.insert(try await connection.run { _ in pthread_self() })
                }
                #expect(threads.count == 1)
            }
        }
    }
}
