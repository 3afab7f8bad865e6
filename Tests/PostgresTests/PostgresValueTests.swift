import Foundation
import Postgres
import TestSupport
import Testing

@Suite("libpq layer: values and errors")
struct PostgresValueTests {
    @Test("every supported type round-trips through the server")
    func roundTrips() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                let uuid = UUID()
                let instant = Date(timeIntervalSince1970: 1_790_000_000.123456)
                let bytes: [UInt8] = [0, 1, 2, 255, 0, 128]
                let row = try #require(
                    try await connection.query(
                        "SELECT $1::text, $2::int4, $3::int8, $4::bool, $5::uuid, $6::timestamptz, $7::bytea, $8::jsonb, $9::float8, $10::text[], $11::bytea",
                        [
                            .text("zoë ✓ 'quoted' \\ \"x\""), .int32(Int32.min), .int64(Int64.max), .bool(true), .uuid(uuid),
                            .timestamp(instant), .bytea(bytes), .jsonb(#"{"b": [1, 2], "a": "x"}"#), .float64(-0.125),
                            .textArray(["a", nil, "c"]), .bytea([]),
                        ]
                    ).first)
                #expect(try row.decode(String.self, at: 0) == "zoë ✓ 'quoted' \\ \"x\"")
                #expect(try row.decode(Int32.self, at: 1) == Int32.min)
                #expect(try row.decode(Int64.self, at: 2) == Int64.max)
                #expect(try row.decode(Bool.self, at: 3) == true)
                #expect(try row.decode(UUID.self, at: 4) == uuid)
                let decodedInstant = try row.decode(Date.self, at: 5)
                #expect(abs(decodedInstant.timeIntervalSince1970 - instant.timeIntervalSince1970) < 0.000_001)
                #expect(try row.decode([UInt8].self, at: 6) == bytes)
                #expect(try row.decode(String.self, at: 7) == #"{"a": "x", "b": [1, 2]}"#)  // jsonb's own rendering
                #expect(try row.decode(Double.self, at: 8) == -0.125)
                #expect(try row.decode(PostgresTextArray.self, at: 9).elements == ["a", nil, "c"])
                #expect(try row.decode([UInt8].self, at: 10) == [])
            }
        }
    }

    @Test("float8 and timestamptz arrays reach the server element by element, NULLs included")
    func numericAndTimeArrays() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                let instant = Date(timeIntervalSince1970: 1_790_000_000.123456)
                let rows = try await connection.query(
                    """
                    SELECT n, d, t, t = $3::timestamptz FROM unnest($1::float8[], $2::timestamptz[]) WITH ORDINALITY AS x(d, t, n) ORDER BY n
                    """,
                    [
                        .float64Array([-0.125, nil, 1e300]), .timestampArray([instant, nil, Date(timeIntervalSince1970: 0)]),
                        .timestamp(instant),
                    ])
                #expect(rows.count == 3)
                #expect(try rows.map { try $0.decode(Double?.self, at: 1) } == [-0.125, nil, 1e300])
                #expect(try rows[0].decode(Bool.self, at: 3) == true)
                #expect(try rows[1].decode(Date?.self, at: 2) == nil)
                #expect(try rows[2].decode(Date.self, at: 2).timeIntervalSince1970 == 0)
            }
        }
    }

    @Test("NULL decodes as nil into an optional and is an error otherwise")
    func nulls() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            let pool = PostgresPool(conninfo: conninfo, maxConnections: 1)
            let row = try #require(
                try await pool.query(
                    "SELECT NULL::text, NULL::int8, NULL::uuid, NULL::bytea, NULL::timestamptz, $1::text", [.null]
                ).first)
            #expect(try row.decode(String?.self, at: 0) == nil)
            #expect(try row.decode(Int64?.self, at: 1) == nil)
            #expect(try row.decode(UUID?.self, at: 2) == nil)
            #expect(try row.decode([UInt8]?.self, at: 3) == nil)
            #expect(try row.decode(Date?.self, at: 4) == nil)
            #expect(try row.decode(String?.self, at: 5) == nil)
            let error = #expect(throws: PostgresError.self) { try row.decode(String.self, at: 0) }
            #expect(error?.code == .decoding)
            #expect(throws: PostgresError.self) { try row.decode(Int64.self, at: 0) }  // wrong type as well
            await pool.close()
        }
    }

    @Test("server errors keep their SQLSTATE and never show SQL in their description")
    func errors() async throws {
        try await TestDatabase.withFresh(migrated: false) { conninfo in
            try await PostgresPool(conninfo: conninfo, maxConnections: 2).use { pool in
                let division = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1 / $1::int4", [.int32(0)]) }
                #expect(division?.sqlState?.code == "22012")
                #expect(division?.code == .server)

                let syntax = await #expect(throws: PostgresError.self) { try await pool.query("SELEKT secret_column FROM t") }
                #expect(syntax?.sqlState?.code == "42601")
                #expect(!(syntax?.description.contains("secret_column") ?? true))
                #expect(!String(describing: syntax!).contains("SELEKT"))

                try await pool.query("CREATE TABLE t (id int8 PRIMARY KEY)")
                try await pool.query("INSERT INTO t VALUES ($1)", [.int64(1)])
                let duplicate = await #expect(throws: PostgresError.self) { try await pool.query("INSERT INTO t VALUES ($1)", [.int64(1)]) }
                #expect(duplicate?.sqlState == .uniqueViolation)
                // The connection is still usable after errors.
                #expect(try await pool.query("SELECT count(*) FROM t")[0].decode(Int.self, at: 0) == 1)
            }
        }
    }
}
