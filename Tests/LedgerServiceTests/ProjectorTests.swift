import Foundation
import LedgerDomain
import Logging
import Postgres
import TestSupport
import Testing

@testable import LedgerService

/// The projector against a real PostgreSQL: one instance folds at a time (the lease), another takes
/// over from the checkpoint, and a rebuild that moves the checkpoint under a running projector is
/// where it goes on from. Every wait is for a condition in the database, never for a time.
@Suite("The projector: its lease, take-over and reload, against a real PostgreSQL")
struct ProjectorTests {
    private func faces(_ range: Range<Int>) -> LedgerCommand {
        .importFaces(
            collectionId: "c",
            faces: range.map {
                FaceToImport(faceId: "f\($0)", faceIdGiven: true, externalImageId: nil, imageId: "i", embedding: [1, Float($0), 0.5])
            })
    }

    /// The lease's owner and the checkpoint, as the database has them.
    private func checkpoint(_ connection: PostgresConnection) async throws -> (owner: String?, position: Int64) {
        let rows = try await connection.query(
            "SELECT owner, position FROM projector_checkpoints WHERE projector = $1",
            [.text(Projector.name)])
        guard let row = rows.first else { return (nil, 0) }
        return (try row.decode(String?.self, at: 0), try row.decode(Int64.self, at: 1))
    }

    private func head(_ connection: PostgresConnection) async throws -> Int64 {
        try await connection.query("SELECT coalesce(max(position), 0) FROM events")[0].decode(Int64.self, at: 0)
    }

    /// Returns once `owner` holds the lease and the checkpoint is at the log's head.
    private func waitUntilCaughtUp(by owner: String, _ connection: PostgresConnection) async throws {
        while true {
            let (holder, position) = try await checkpoint(connection)
            if holder == owner, position == (try await head(connection)) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Rows of the read models that differ from the write model's, over every column.
    private func differences(_ connection: PostgresConnection) async throws -> Int {
        var total = 0
        for table in ["collections", "users", "faces"] { total += try await readModelRowsDiffering(table, in: connection) }
        return total
    }

    @Test("one projector folds while another stands by; when it stops, the other takes over from the checkpoint")
    func takeOver() async throws {
        try await TestDatabase.withFresh { conninfo in
            let connection = try await PostgresConnection.connect(conninfo)
            let biometrics = Biometrics(masterKeys: .ephemeral())
            let first = Projector(conninfo: conninfo, logger: Logger(label: "first"), biometrics: biometrics, pollInterval: .milliseconds(50))
            let second = Projector(conninfo: conninfo, logger: Logger(label: "second"), biometrics: biometrics, pollInterval: .milliseconds(50))
            try await submitThroughProcessor(
                [.createCollection(collectionId: "c", arn: "arn:c"), .createUser(collectionId: "c", userId: "u"), faces(0..<4)],
                conninfo: conninfo, biometrics: biometrics)
            try await withThrowingTaskGroup(of: Void.self) { outer in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await first.run() }
                    try await waitUntilCaughtUp(by: first.owner, connection)
                    // The second starts once the first holds the lease: it stands by.
                    outer.addTask { try await second.run() }
                    try await submitThroughProcessor(
                        [.associateFaces(collectionId: "c", userId: "u", faceIds: ["f0", "f1"], userMatchThreshold: 0)],
                        conninfo: conninfo, biometrics: biometrics)
                    try await waitUntilCaughtUp(by: first.owner, connection)
                    #expect(try await differences(connection) == 0)
                    group.cancelAll()
                }
                // The first is gone: the second takes the lease over and folds what follows, from the checkpoint.
                try await submitThroughProcessor(
                    [.disassociateFaces(collectionId: "c", userId: "u", faceIds: ["f0"]), faces(4..<6)],
                    conninfo: conninfo, biometrics: biometrics)
                try await waitUntilCaughtUp(by: second.owner, connection)
                #expect(try await differences(connection) == 0)
                #expect(try await connection.query("SELECT count(*) FROM rm_faces")[0].decode(Int.self, at: 0) == 6)
                outer.cancelAll()
            }
            await connection.close()
        }
    }

    @Test("a read waiting for its write ends the projector's gathering pause")
    func readEndsGathering() async throws {
        try await TestDatabase.withFresh { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                let biometrics = Biometrics(masterKeys: .ephemeral())
                // A pause far longer than the wait below: only the waiting read can end it in time.
                let projector = Projector(
                    conninfo: conninfo, logger: Logger(label: "test"), biometrics: biometrics, pollInterval: .milliseconds(50),
                    gather: .seconds(600))
                try await submitThroughProcessor(
                    [.createCollection(collectionId: "c", arn: "arn:c"), .createUser(collectionId: "c", userId: "u")],
                    conninfo: conninfo, biometrics: biometrics)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await projector.run() }
                    try await waitUntilCaughtUp(by: projector.owner, connection)
                    try await submitThroughProcessor([faces(0..<2)], conninfo: conninfo, biometrics: biometrics)
                    let written = try await head(connection)
                    await projector.waitUntilFolded(written, timeout: .seconds(60))
                    #expect(projector.foldedPosition >= written)
                    group.cancelAll()
                }
            }
        }
    }

    @Test("a rebuild under a running projector: it goes on with the swapped tables from the checkpoint")
    func reloadAfterRebuild() async throws {
        try await TestDatabase.withFresh { conninfo in
            let connection = try await PostgresConnection.connect(conninfo)
            let biometrics = Biometrics(masterKeys: .ephemeral())
            let projector = Projector(conninfo: conninfo, logger: Logger(label: "test"), biometrics: biometrics, pollInterval: .milliseconds(50))
            try await submitThroughProcessor(
                [.createCollection(collectionId: "c", arn: "arn:c"), .createUser(collectionId: "c", userId: "u"), faces(0..<3)],
                conninfo: conninfo, biometrics: biometrics)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await projector.run() }
                try await waitUntilCaughtUp(by: projector.owner, connection)
                // Damage the read models, then rebuild them while the projector runs.
                try await connection.run { try $0.executeScript("DELETE FROM rm_faces WHERE face_id = 'f2'") }
                _ = try await ReadModelRebuild(connection: connection, biometrics: biometrics).run()
                #expect(try await differences(connection) == 0)
                try await submitThroughProcessor(
                    [.associateFaces(collectionId: "c", userId: "u", faceIds: ["f1", "f2"], userMatchThreshold: 0)],
                    conninfo: conninfo, biometrics: biometrics)
                try await waitUntilCaughtUp(by: projector.owner, connection)
                #expect(try await differences(connection) == 0)
                #expect(try await connection.query("SELECT face_count FROM rm_users WHERE user_id = 'u'")[0].decode(Int.self, at: 0) == 2)
                group.cancelAll()
            }
            await connection.close()
        }
    }

    @Test("a projector whose checkpoint was moved by someone else (a rebuild's swap) reloads from it instead of folding twice")
    func reloadFromMovedCheckpoint() async throws {
        try await TestDatabase.withFresh { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                let biometrics = Biometrics(masterKeys: .ephemeral())
                try await submitThroughProcessor(
                    [.createCollection(collectionId: "c", arn: "arn:c"), .createUser(collectionId: "c", userId: "u"), faces(0..<3)],
                    conninfo: conninfo, biometrics: biometrics)
                // The rebuild moves the checkpoint to the head; then more is appended.
                _ = try await ReadModelRebuild(connection: connection, biometrics: biometrics).run()
                let moved = try await checkpoint(connection).position
                try await submitThroughProcessor(
                    [.associateFaces(collectionId: "c", userId: "u", faceIds: ["f0", "f1"], userMatchThreshold: 0), faces(3..<5)],
                    conninfo: conninfo, biometrics: biometrics)

                // A projector that last wrote at position 1, as one would that was busy while the swap happened.
                let projector = Projector(conninfo: conninfo, logger: Logger(label: "test"), biometrics: biometrics)
                #expect(try await connection.run { try Projector.acquire(owner: projector.owner, lease: 5, in: $0) })
                let state = ProjectorState()
                state.position = 1
                try await projector.project(state, on: connection)

                // It refused its stale batch, took the moved checkpoint, and folded only what followed it.
                let head = try await head(connection)
                #expect(moved < head)
                #expect(state.position == head)
                #expect(try await checkpoint(connection).position == head)
                #expect(try await differences(connection) == 0)
                #expect(try await connection.query("SELECT count(*) FROM rm_faces")[0].decode(Int.self, at: 0) == 5)
            }
        }
    }
}
