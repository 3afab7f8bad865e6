import EventLog
import Postgres
import TestSupport
import Testing

@Suite("Migrations")
struct MigrationTests {
    @Test("three concurrent runs on an empty database all succeed, and a later run is a no-op")
    func concurrentAndRepeated() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            let connections = try await (0..<3).asyncMap { _ in try await PostgresConnection.connect(conninfo) }
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for connection in connections { group.addTask { try await Migrations.migrate(connection) } }
                return try await group.reduce(into: [[Int]]()) { $0.append($1) }
            }
            let all = Migrations.all.map(\.version)
            #expect(!all.isEmpty)
            // Exactly one run applied everything; the others found it done.
            #expect(applied.filter { $0 == all }.count == 1)
            #expect(applied.filter(\.isEmpty).count == 2)
            #expect(try await Migrations.appliedVersions(connections[0]) == all)
            #expect(try await Migrations.migrate(connections[1]) == [])
            for connection in connections { await connection.close() }
        }
    }

    @Test("a failing migration leaves no trace and is retried next time")
    func failingMigrationRollsBack() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                let broken = Migration(version: 9001, name: "broken", sql: "CREATE TABLE half_done (id int); SELECT 1/0;")
                await #expect(throws: PostgresError.self) { try await Migrations.migrate(connection, migrations: [broken]) }
                let tables = try await connection.query("SELECT count(*) FROM pg_tables WHERE tablename = $1", ["half_done"])
                #expect(try tables[0].decode(Int.self, at: 0) == 0)
                #expect(try await Migrations.appliedVersions(connection) == [])
            }
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
