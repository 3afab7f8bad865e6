import EventLog
import Foundation
import LedgerDomain
import Logging
import Postgres
import TestSupport
import Testing

@testable import LedgerService

/// The read side without a projector running: `rebuild`'s swap, and the statuses of users whose
/// events are not folded yet.
@Suite("Read models: rebuild's swap and users' statuses, against a real PostgreSQL")
struct ReadModelsTests {
    /// Runs `commands` through a command processor (no projector: the read models stay as they were).
    private let history: [LedgerCommand] = [
        .createCollection(collectionId: "c", arn: "arn:c"),
        .createUser(collectionId: "c", userId: "u"),
        .createUser(collectionId: "c", userId: "v"),
        .importFaces(
            collectionId: "c",
            faces: (0..<4).map {
                FaceToImport(faceId: "f\($0)", faceIdGiven: true, externalImageId: "img", imageId: "i", embedding: [1, Float($0), 0.5])
            }),
        .associateFaces(collectionId: "c", userId: "u", faceIds: ["f0", "f1"], userMatchThreshold: 0),
        .forgetFaces(collectionId: "c", faceIds: ["f3"], reason: "test"),
    ]

    private func checkpoint(_ connection: PostgresConnection) async throws -> Int64 {
        try await connection.query(
            "SELECT coalesce((SELECT position FROM projector_checkpoints WHERE projector = $1), 0)",
            [.text(Projector.name)])[0].decode(Int64.self, at: 0)
    }

    /// The keys and indexes of the read models, without their names: what the migrations made them.
    private func readModelIndexes(_ connection: PostgresConnection) async throws -> [String] {
        try await connection.query(
            """
            SELECT c.relname || ': ' || coalesce(con.contype::text, '-') || ' ' || i.indisunique || ' '
                   || substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$')
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indrelid
            LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
            WHERE c.relname IN ('rm_collections', 'rm_users', 'rm_faces')
            ORDER BY 1
            """
        ).map { try $0.decode(String.self, at: 0) }
    }

    @Test("rebuild folds the log into fresh tables and swaps them in, the checkpoint at the head; damaged read models come back")
    func rebuildSwaps() async throws {
        try await TestDatabase.withFresh { conninfo in
            let connection = try await PostgresConnection.connect(conninfo)
            let biometrics = Biometrics(masterKeys: .ephemeral())
            try await submitThroughProcessor(history, conninfo: conninfo, biometrics: biometrics)
            #expect(try await connection.query("SELECT count(*) FROM rm_users")[0].decode(Int.self, at: 0) == 0)
            let indexes = try await readModelIndexes(connection)
            #expect(indexes.count >= 4, "\(indexes)")

            var rebuild = ReadModelRebuild(connection: connection, biometrics: biometrics)
            // Pages of two events: many pages, folded on a thread of their own in the order they were read.
            rebuild.pageSize = 2
            let outcome = try await rebuild.run()
            let head = try await connection.query("SELECT max(position) FROM events")[0].decode(Int64.self, at: 0)
            #expect(outcome.position == head)
            #expect(try await checkpoint(connection) == head)
            for table in ["collections", "users", "faces"] { #expect(try await readModelRowsDiffering(table, in: connection) == 0, "\(table)") }
            #expect(try await connection.query("SELECT count(*) FROM rm_users")[0].decode(Int.self, at: 0) == 2)

            // The fresh tables were filled before they had indexes; they end with those of the migrations.
            #expect(try await readModelIndexes(connection) == indexes)

            try await connection.run { try $0.executeScript("DELETE FROM rm_users; UPDATE rm_faces SET user_id = NULL") }
            _ = try await rebuild.run()
            for table in ["collections", "users", "faces"] { #expect(try await readModelRowsDiffering(table, in: connection) == 0, "\(table)") }
            #expect(try await readModelIndexes(connection) == indexes)
            // No table of the swap is left behind.
            #expect(
                try await connection.query(
                    """
                    SELECT count(*) FROM pg_tables WHERE tablename LIKE 'rm\\_%\\_rebuild' OR tablename LIKE 'rm\\_%\\_old'
                    """)[0].decode(Int.self, at: 0) == 0)
            await connection.close()
        }
    }

    @Test("a rebuild while another runs is refused, and changes nothing")
    func oneRebuildAtATime() async throws {
        try await TestDatabase.withFresh { conninfo in
            let connection = try await PostgresConnection.connect(conninfo)
            let other = try await PostgresConnection.connect(conninfo)
            let biometrics = Biometrics(masterKeys: .ephemeral())
            try await submitThroughProcessor(history, conninfo: conninfo, biometrics: biometrics)
            // The other session holds the rebuild lock, as a running rebuild does.
            try await other.query("SELECT pg_advisory_lock($1)", [.int64(ReadModelRebuild.lockKey)])
            let refused = await #expect(throws: MaintenanceError.self) {
                try await ReadModelRebuild(connection: connection, biometrics: biometrics).run()
            }
            #expect(refused?.description == "another rebuild is running")
            #expect(try await checkpoint(connection) == 0)
            #expect(try await connection.query("SELECT count(*) FROM rm_faces")[0].decode(Int.self, at: 0) == 0)
            // Unlocked explicitly: a closed session's locks go only when its backend has exited, a moment later.
            try await other.query("SELECT pg_advisory_unlock($1)", [.int64(ReadModelRebuild.lockKey)])
            await other.close()
            _ = try await ReadModelRebuild(connection: connection, biometrics: biometrics).run()
            #expect(try await connection.query("SELECT count(*) FROM rm_faces")[0].decode(Int.self, at: 0) == 4)
            await connection.close()
        }
    }

    @Test("a user whose events are not folded yet is CREATING or UPDATING; the others ACTIVE or CREATED")
    func statuses() async throws {
        try await TestDatabase.withFresh { conninfo in
            let connection = try await PostgresConnection.connect(conninfo)
            let biometrics = Biometrics(masterKeys: .ephemeral())
            try await submitThroughProcessor(history + [.createUser(collectionId: "c", userId: "w")], conninfo: conninfo, biometrics: biometrics)
            _ = try await ReadModelRebuild(connection: connection, biometrics: biometrics).run()
            let pool = PostgresPool(conninfo: conninfo)
            let readModels = ReadModels(pool: pool)
            func statuses() async throws -> [String: UserStatus] {
                Dictionary(uniqueKeysWithValues: try await readModels.users(in: "c", after: nil, limit: 100).map { ($0.userId, $0.status) })
            }
            #expect(try await statuses() == ["u": .active, "v": .created, "w": .created])

            // Appended, not folded: a new user, a user gaining a face, a user losing its faces.
            try await submitThroughProcessor(
                [
                    .createUser(collectionId: "c", userId: "n"),
                    .associateFaces(collectionId: "c", userId: "v", faceIds: ["f2"], userMatchThreshold: 0),
                    .disassociateFaces(collectionId: "c", userId: "u", faceIds: ["f0"]),
                ], conninfo: conninfo, biometrics: biometrics)
            #expect(try await statuses() == ["n": .creating, "u": .updating, "v": .updating, "w": .created])
            // A page after `v` lists only what follows it, the unfolded new user included.
            #expect(try await readModels.users(in: "c", after: "m", limit: 2).map(\.userId) == ["n", "u"])

            _ = try await ReadModelRebuild(connection: connection, biometrics: biometrics).run()
            #expect(try await statuses() == ["n": .created, "u": .active, "v": .active, "w": .created])
            await pool.close()
            await connection.close()
        }
    }
}
