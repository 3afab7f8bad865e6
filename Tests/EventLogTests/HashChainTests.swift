import EventLog
import Foundation
import Postgres
import TestSupport
import Testing

@Suite("The hash chain")
struct HashChainTests {
    static func metadata(
        principal: String = "tester", clientToken: String? = "token-1", source: String? = "127.0.0.1",
        command: UUID? = UUID()
    ) -> EventMetadata {
        EventMetadata(
            principal: principal, requestId: UUID().uuidString, clientToken: clientToken, operation: "Test",
            sourceAddress: source, commandId: command)
    }

    /// Events covering every shape a column can take: NULLs, empty values, non-ASCII text, nested JSON.
    static let varied: [NewEvent] = [
        NewEvent(stream: "user/u1", type: "UserCreated", data: #"{"userId":"u1"}"#, metadata: metadata()),
        NewEvent(
            stream: "face/f1", type: "FaceImported", schemaVersion: 2,
            data: #"{"b": [1, 2.50, {"z": null}], "a": "Zoë ☃ \u0001"}"#, embedding: [0, 1, 2, 255],
            metadata: metadata(principal: "ålice", clientToken: nil, source: nil, command: nil)),
        NewEvent(stream: "face/f2", type: "FaceImported", data: "{}", embedding: [], metadata: metadata(clientToken: "")),
        NewEvent(stream: "face/f3", type: "FaceImported", data: "{}", embedding: nil, metadata: metadata(clientToken: "")),
    ]

    static let rowsSQL = "SELECT " + HashChain.columns.joined(separator: ", ") + ", hash FROM events ORDER BY position"

    @Test("Swift's hash of every row equals the one append_events() stored")
    func swiftMatchesDatabase() async throws {
        try await TestDatabase.withFresh { conninfo in
            let log = EventLog(pool: PostgresPool(conninfo: conninfo))
            let first = try await log.append(Array(Self.varied.prefix(2)), to: "c1")
            let second = try await log.append(Array(Self.varied.dropFirst(2)), to: "c2")
            let connection = try await PostgresConnection.connect(conninfo)
            let rows = try await connection.query(Self.rowsSQL)
            #expect(rows.count == 4)
            var previous: [UInt8]?
            for row in rows {
                let stored: [UInt8] = try row.decode(at: HashChain.columns.count)
                #expect(stored.count == 32)
                #expect(try HashChain.hash(previous: previous, row: row) == stored)
                previous = stored
            }
            // The hashes come back with the appended events and with reads.
            #expect((first + second).map(\.hash) == (try rows.map { try $0.decode([UInt8].self, at: HashChain.columns.count) }))
            #expect(try await log.read(after: 0) == first + second)
            await connection.close()
        }
    }

    @Test("the encoding tells NULL from empty, and the database's fields are Swift's")
    func nullIsNotEmpty() async throws {
        try await TestDatabase.withFresh { conninfo in
            let connection = try await PostgresConnection.connect(conninfo)
            let row = try await connection.query(
                "SELECT event_hash_field(NULL), event_hash_field(''::bytea), sha256(event_hash_field(NULL) || event_hash_field('\\x0102'::bytea))")[0]
            #expect(try row.decode([UInt8].self, at: 0) == [0xFF, 0xFF, 0xFF, 0xFF])
            #expect(try row.decode([UInt8].self, at: 1) == [0, 0, 0, 0])
            #expect(try row.decode([UInt8].self, at: 2) == HashChain.hash(previous: nil, columns: [[1, 2]]))
            #expect(HashChain.hash(previous: nil, columns: [nil]) != HashChain.hash(previous: nil, columns: [[]]))
            // Moving a byte across a field boundary changes the hash: fields carry their lengths.
            #expect(HashChain.hash(previous: nil, columns: [[1], [2, 3]]) != HashChain.hash(previous: nil, columns: [[1, 2], [3]]))
            await connection.close()
        }
    }

    @Test("an intact log verifies; a change by a superuser with the triggers off is found at its position")
    func verification() async throws {
        try await TestDatabase.withFresh { conninfo in
            let log = EventLog(pool: PostgresPool(conninfo: conninfo))
            for index in 0..<7 {
                try await log.append(
                    [
                        NewEvent(
                            stream: "s\(index % 3)", type: "Happened", data: #"{"i":\#(index)}"#,
                            metadata: Self.metadata())
                    ], to: "c")
            }
            let connection = try await PostgresConnection.connect(conninfo)
            // A page size of 3 makes the walk cross page boundaries.
            let intact = try await connection.run { try LogVerification.run(in: $0, pageSize: 3) }
            #expect(intact.intact && intact.events == 7 && intact.head == 7)

            try await connection.run { session in
                try session.executeScript(
                    """
                    ALTER TABLE events DISABLE TRIGGER ALL;
                    UPDATE events SET recorded_at = recorded_at + interval '1 microsecond' WHERE position = 5;
                    ALTER TABLE events ENABLE TRIGGER ALL;
                    """)
            }
            let broken = try await connection.run { try LogVerification.run(in: $0, pageSize: 3) }
            #expect(broken.failure?.position == 5)
            #expect(broken.events == 4)
            await connection.close()
        }
    }

    @Test("migrating an existing log gives its events their hashes, in position order")
    func backfill() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            let connection = try await PostgresConnection.connect(conninfo)
            try await Migrations.migrate(connection, migrations: Migrations.all.filter { $0.version < 6 })
            // append_events() as it was before the hash chain.
            for index in 0..<3 {
                _ = try await connection.query(
                    """
                    SELECT position FROM append_events('c', '{}', '{}', ARRAY['s'], ARRAY['Old'], ARRAY[1::int8],
                        ARRAY[$1::jsonb], ARRAY[NULL::bytea], ARRAY['p'], ARRAY['r'], ARRAY[NULL], ARRAY['Op'],
                        ARRAY[NULL], ARRAY[NULL::uuid])
                    """, [.text(#"{"i":\#(index)}"#)])
            }
            try await Migrations.migrate(connection)
            let log = EventLog(pool: PostgresPool(conninfo: conninfo))
            try await log.append([NewEvent(stream: "s", type: "New", data: "{}", metadata: Self.metadata())], to: "c")
            let report = try await connection.run { try LogVerification.run(in: $0) }
            #expect(report.intact && report.events == 4)
            await connection.close()
        }
    }
}
