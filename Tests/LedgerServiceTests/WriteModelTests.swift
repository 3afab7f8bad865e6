import EventLog
import Foundation
import LedgerDomain
import Logging
import Postgres
import TestSupport
import Testing

@testable import LedgerService

/// The write model and the read models are folded a batch at a time from the rows the events name
/// (`PartialState`), never from the whole log. These tests hold them to the whole log folded in memory.
@Suite("State folded from the rows the events name")
struct WriteModelTests {
    /// A small deterministic generator, so that a failure can be replayed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    private func submission(_ command: LedgerCommand) -> CommandSubmission { .test(command) }

    /// Random commands on two collections: faces imported, associated, moved, disassociated, forgotten
    /// and deleted; users created and deleted; a collection deleted and created again.
    private func randomCommands(_ count: Int, using random: inout SplitMix) -> [LedgerCommand] {
        var commands: [LedgerCommand] = []
        var nextFace = 0
        for _ in 0..<count {
            let id = Int.random(in: 0..<4, using: &random) == 0 ? "d" : "c"
            let user = "u\(Int.random(in: 0..<6, using: &random))"
            let faces = (0..<Int.random(in: 1...4, using: &random)).map { _ in "f\(Int.random(in: 0..<max(1, nextFace), using: &random))" }
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<15:
                let imported = (0..<Int.random(in: 1...3, using: &random)).map { _ -> FaceToImport in
                    nextFace += 1
                    let embedding = (0..<8).map { _ in Float.random(in: -1...1, using: &random) }
                    return FaceToImport(
                        faceId: "f\(nextFace - 1)", faceIdGiven: true, externalImageId: "img", imageId: "i",
                        embedding: embedding)
                }
                commands.append(.importFaces(collectionId: id, faces: imported))
            case 15..<27: commands.append(.createUser(collectionId: id, userId: user))
            case 27..<65: commands.append(.associateFaces(collectionId: id, userId: user, faceIds: faces, userMatchThreshold: 0))
            case 65..<77: commands.append(.disassociateFaces(collectionId: id, userId: user, faceIds: faces))
            case 77..<85: commands.append(.deleteFaces(collectionId: id, faceIds: faces))
            case 85..<91: commands.append(.forgetFaces(collectionId: id, faceIds: faces, reason: nil))
            case 91..<98: commands.append(.deleteUser(collectionId: id, userId: user))
            case 98:
                commands.append(.deleteCollection(collectionId: id))
                commands.append(.createCollection(collectionId: id, arn: "arn:\(id)"))
            default: commands.append(.createCollection(collectionId: id, arn: "arn:\(id)"))
            }
        }
        return commands
    }

    @Test("the write model and the read models equal the whole log folded in memory, after random concurrent commands")
    func partialFoldsEqualTheWholeFold() async throws {
        try await TestDatabase.withFresh { conninfo in
            let connection = try await PostgresConnection.connect(conninfo)
            let checker = try await PostgresConnection.connect(conninfo)
            let biometrics = Biometrics(masterKeys: .ephemeral())
            let processor = CommandProcessor(conninfo: conninfo, logger: Logger(label: "test"), biometrics: biometrics)
            try await processor.running {
                var random = SplitMix(state: 20_261_130)
                for id in ["c", "d"] {
                    _ = await processor.submit(submission(.createCollection(collectionId: id, arn: "arn:\(id)")))
                }
                // Groups submitted together land in shared batches, so later commands of a batch decide
                // against what earlier ones changed.
                let commands = randomCommands(600, using: &random)
                var succeeded = 0
                for group in stride(from: 0, to: commands.count, by: 12).map({ Array(commands[$0..<min($0 + 12, commands.count)]) }) {
                    succeeded += await withTaskGroup(of: Int.self) { tasks in
                        for command in group {
                            tasks.addTask {
                                if case .success = await processor.submit(self.submission(command)) { return 1 }
                                return 0
                            }
                        }
                        return await tasks.reduce(0, +)
                    }
                }
                #expect(succeeded > 300)
            }

            let projector = Projector(
                conninfo: conninfo, logger: Logger(label: "test"), biometrics: biometrics,
                pollInterval: .milliseconds(20))
            await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await projector.run() }
                await projector.waitUntilFolded(processor.committedPosition, timeout: .seconds(120))
                group.cancelAll()
            }
            #expect(projector.foldedPosition == processor.committedPosition)

            try await checker.run { session in
                // The whole log folded in memory, written to fresh tables.
                try session.executeScript(
                    """
                    CREATE TABLE rm_collections_rebuild (LIKE rm_collections INCLUDING ALL);
                    CREATE TABLE rm_users_rebuild (LIKE rm_users INCLUDING ALL);
                    CREATE TABLE rm_faces_rebuild (LIKE rm_faces INCLUDING ALL);
                    """)
                var whole = FoldedState()
                try biometrics.forEachPage(after: 0, in: session) { try whole.fold($0) }
                _ = try session.pipeline(StateRows.inserts(forAll: whole.state, tables: .rebuild))
                // The commands went through every path that changes the state.
                let counts = try Dictionary(
                    uniqueKeysWithValues: session.query("SELECT type, count(*) FROM events GROUP BY type").map {
                        (try $0.decode(String.self, at: 0), try $0.decode(Int.self, at: 1))
                    })
                for type in ["FaceAssociated", "FaceDisassociated", "FaceForgotten", "FaceDeleted", "UserDeleted", "CollectionDeleted"] {
                    #expect(counts[type, default: 0] > 0, "\(type)")
                }
                #expect(counts["FaceAssociated", default: 0] > 20)
                #expect(try session.query("SELECT position FROM write_model")[0].decode(Int64.self, at: 0) == whole.position)
                for table in ["collections", "users", "faces"] {
                    #expect(try rowsDiffering("wm_\(table)", "rm_\(table)_rebuild", in: session) == 0, "write model: \(table)")
                    #expect(try rowsDiffering("rm_\(table)", "rm_\(table)_rebuild", in: session) == 0, "read models: \(table)")
                }
            }
            await connection.close()
            await checker.close()
        }
    }

    @Test("a key lookup reads the rows it names, however much the collection grew after its session's first lookups")
    func lookupsStayKeyedAsTablesGrow() async throws {
        try await TestDatabase.withFresh { conninfo in
            try await PostgresConnection.with(conninfo, settings: SessionSettings.none.keyLookups) { connection in
                // A small collection, analyzed as autovacuum would.
                try await connection.run { try $0.executeScript(Self.insertFaces(from: 0, count: 120) + "ANALYZE wm_faces;") }
                // Lookups of many faces while the collection is small: then reading the whole collection and
                // filtering the faces looked cheaper than 100 probes, and PostgreSQL's default kept that plan
                // (the statement's generic one) as the table grew, until the lookups went one key at a time.
                for _ in 0..<10 {
                    _ = try await connection.run { try PartialState.load(Self.named(Array(0..<100)), from: .writeModel, in: $0) }
                }
                try await connection.run { try $0.executeScript(Self.insertFaces(from: 120, count: 20_000)) }
                let fetched = try await connection.run { session in
                    // Rows read through indexes by this session and not yet sent to the statistics collector.
                    func readSoFar() throws -> Int64 {
                        try session.query("SELECT idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname = 'wm_faces'")[0]
                            .decode(Int64.self, at: 0)
                    }
                    return try session.transaction {
                        let before = try readSoFar()
                        let loaded = try PartialState.load(Self.named([3, 7]), from: .writeModel, in: session)
                        #expect(loaded.state.collections["c"]?.faces.keys.sorted() == ["f3", "f7"])
                        return try readSoFar() - before
                    }
                }
                #expect(fetched <= 2, "the lookup of two faces read \(fetched) rows of a collection of 20,120")
            }
        }
    }

    @Test("a command batch and its fold read the rows they name, however much the collection grew after their plans were made")
    func batchesStayKeyedAsTablesGrow() async throws {
        try await TestDatabase.withFresh { conninfo in
            let biometrics = Biometrics(masterKeys: .ephemeral())
            // The write path's settings: its plans are made once per session, on the statistics of the time.
            try await PostgresConnection.with(conninfo, settings: SessionSettings.none.keyLookups) { connection in
                try await connection.run { session in
                    // Every kind of command while the tables are small, analyzed as autovacuum would.
                    var random = SplitMix(state: 20_261_201)
                    let early =
                        [LedgerCommand.createCollection(collectionId: "c", arn: "arn:c")]
                        + randomCommands(120, using: &random).filter { $0.collectionId == "c" }
                    for command in early { try Self.decideAndFold([command], biometrics: biometrics, in: session) }
                    try session.executeScript("ANALYZE")

                    // The collection grows by 20,000 faces (of the dimension the random ones have).
                    let grown = (0..<20_000).map {
                        FaceToImport(
                            faceId: "g\($0)", faceIdGiven: true, externalImageId: nil, imageId: "i", embedding: [1, Float($0), 0.5, 0, 0, 0, 0, 1])
                    }
                    try Self.decideAndFold(
                        [.createCollection(collectionId: "c", arn: "arn:c")]
                            + stride(from: 0, to: grown.count, by: 4000).map { .importFaces(collectionId: "c", faces: Array(grown[$0..<$0 + 4000])) },
                        biometrics: biometrics, in: session)
                    let faces = try session.query("SELECT count(*) FROM rm_faces WHERE collection_id = 'c'")[0].decode(Int.self, at: 0)
                    #expect(faces >= 20_000)

                    // Rows read by this session's current transaction, in any table, not yet reported.
                    func readSoFar() throws -> Int64 {
                        try session.query("SELECT coalesce(sum(seq_tup_read + idx_tup_fetch), 0)::bigint FROM pg_stat_xact_user_tables")[0]
                            .decode(Int64.self, at: 0)
                    }
                    let (read, outcomes) = try session.transaction {
                        let before = try readSoFar()
                        let outcomes = try Self.decideAndFold(
                            [
                                .createUser(collectionId: "c", userId: "big"),
                                .associateFaces(collectionId: "c", userId: "big", faceIds: ["g3", "g7", "g11"], userMatchThreshold: 0),
                                .disassociateFaces(collectionId: "c", userId: "big", faceIds: ["g7"]),
                                .importFaces(
                                    collectionId: "c",
                                    faces: [
                                        FaceToImport(
                                            faceId: "h", faceIdGiven: true, externalImageId: nil, imageId: "i", embedding: [1, 2, 3, 4, 5, 6, 7, 8])
                                    ]),
                                .deleteFaces(collectionId: "c", faceIds: ["g11"]),
                                .forgetFaces(collectionId: "c", faceIds: ["g13"], reason: nil),
                                .deleteUser(collectionId: "c", userId: "big"),
                            ], biometrics: biometrics, inTransaction: true, in: session)
                        return (try readSoFar() - before, outcomes)
                    }
                    for outcome in outcomes {
                        guard case .answered(.success(let response)) = outcome else {
                            Issue.record("\(outcome)")
                            continue
                        }
                        #expect(response["UnsuccessfulFaceAssociations"]?.arrayValue.isEmpty ?? true, "\(response)")
                    }
                    #expect(read < 500, "seven commands and their fold read \(read) rows, in a collection of 20,000 faces")
                }
            }
        }
    }

    @Test("a batch that finds events the write model has not folded folds them first, and decides against them")
    func batchCatchesUpWithTheLog() async throws {
        try await TestDatabase.withFresh { conninfo in
            let biometrics = Biometrics(masterKeys: .ephemeral())
            try await PostgresConnection.with(conninfo, settings: SessionSettings.none.keyLookups) { connection in
                try await connection.run { session in
                    let faces = (0..<2).map {
                        FaceToImport(faceId: "f\($0)", faceIdGiven: true, externalImageId: nil, imageId: "i", embedding: [1, 0])
                    }
                    try Self.decideAndFold(
                        [.createCollection(collectionId: "c", arn: "arn:c"), .importFaces(collectionId: "c", faces: faces)],
                        biometrics: biometrics, in: session)
                    // A user created by something that appends without folding into the write model.
                    let encoded = try LedgerEvent.userCreated(UserCreated(userId: "u")).encoded()
                    let metadata = EventMetadata(principal: "test", requestId: "r", operation: "CreateUser")
                    try session.transaction {
                        _ = try EventLog.append(
                            [
                                NewEvent(
                                    stream: encoded.stream, type: encoded.type, schemaVersion: encoded.schemaVersion, data: encoded.data,
                                    metadata: metadata)
                            ],
                            to: "c", in: session)
                    }

                    let outcomes = try Self.decideAndFold(
                        [.associateFaces(collectionId: "c", userId: "u", faceIds: ["f0", "f1"], userMatchThreshold: 0)],
                        biometrics: biometrics, in: session)
                    guard case .answered(.success(let response)) = outcomes.first else {
                        Issue.record("the association against the unfolded user failed: \(outcomes)")
                        return
                    }
                    #expect(response["AssociatedFaces"]?.arrayValue.count == 2, "\(response)")
                    let positions = try session.query("SELECT (SELECT position FROM write_model), (SELECT max(position) FROM events)")[0]
                    #expect(try positions.decode(Int64.self, at: 0) == positions.decode(Int64.self, at: 1))
                    #expect(try session.query("SELECT face_count FROM wm_users WHERE user_id = 'u'")[0].decode(Int.self, at: 0) == 2)
                }
            }
        }
    }

    /// Decides `commands` as the command processor does, in one batch's transaction, then folds what
    /// they appended into the read models as the projector does. Returns the commands' outcomes.
    @discardableResult
    private static func decideAndFold(
        _ commands: [LedgerCommand], biometrics: Biometrics, inTransaction: Bool = false, in session: PostgresSession
    ) throws -> [StepOutcome] {
        func run() throws -> [StepOutcome] {
            let head = try session.query("SELECT coalesce(max(position), 0) FROM events")[0].decode(Int64.self, at: 0)
            let result = try CommandBatch.run(commands.map { .test($0) }, collectionId: "c", biometrics: biometrics, in: session)
            _ = try session.pipeline(result.finishing)
            let events = try biometrics.open(EventLog.readForFold(after: head, limit: 100_000, in: session), in: session)
            _ = try session.pipeline(StateRows.statements(folding: events.ledgerEvents(), into: .readModels, in: session))
            return result.outcomes
        }
        return inTransaction ? try run() : try session.transaction { try run() }
    }

    /// Faces f<id> of collection c, as commands name them.
    private static func named(_ faceIds: [Int]) -> NamedEntities {
        var named = NamedEntities()
        named.collections.insert("c")
        named.faces = Set(faceIds.map { EntityKey("c", "f\($0)") })
        return named
    }

    /// Faces f<from>… of collection c, none of them associated, written straight into the write model.
    private static func insertFaces(from first: Int, count: Int) -> String {
        """
        INSERT INTO wm_collections (collection_id, arn, created_at, created_position, face_count, user_count)
        VALUES ('c', 'arn:c', now(), 1, 0, 0) ON CONFLICT DO NOTHING;
        INSERT INTO wm_faces (collection_id, face_id, image_id, confidence, embedding, indexed_at)
        SELECT 'c', 'f' || n, 'i', 99, '\\x0000803f'::bytea, now() FROM generate_series(\(first), \(first + count - 1)) AS n;
        """
    }

    @Test("a log written before the write model existed is folded into it at start-up, a page at a time")
    func catchUpAtStartUp() async throws {
        try await TestDatabase.withFresh { conninfo in
            let connection = try await PostgresConnection.connect(conninfo)
            let biometrics = Biometrics(masterKeys: .ephemeral())
            let first = CommandProcessor(conninfo: conninfo, logger: Logger(label: "test"), biometrics: biometrics)
            try await first.running {
                _ = await first.submit(submission(.createCollection(collectionId: "c", arn: "arn:c")))
                _ = await first.submit(submission(.createUser(collectionId: "c", userId: "u")))
                let faces = (0..<3).map {
                    FaceToImport(
                        faceId: "f\($0)", faceIdGiven: true, externalImageId: nil, imageId: "i",
                        embedding: [1, Float($0), 0.5])
                }
                _ = await first.submit(submission(.importFaces(collectionId: "c", faces: faces)))
                _ = await first.submit(submission(.associateFaces(collectionId: "c", userId: "u", faceIds: ["f0", "f1"], userMatchThreshold: 0)))
            }
            let expected = try await connection.query("SELECT f::text FROM wm_faces f ORDER BY face_id").map { try $0.decode(String.self, at: 0) }

            // As if the write model had just been created over this log.
            try await connection.run { try $0.executeScript("TRUNCATE wm_collections, wm_users, wm_faces; UPDATE write_model SET position = 0") }
            let second = CommandProcessor(conninfo: conninfo, logger: Logger(label: "test"), biometrics: biometrics)
            try await second.running {  // ready once warmed up
                let folded = try await connection.query("SELECT f::text FROM wm_faces f ORDER BY face_id").map { try $0.decode(String.self, at: 0) }
                #expect(folded == expected)
                #expect(try await connection.query("SELECT face_count, user_count FROM wm_collections")[0].decode(Int.self, at: 0) == 3)

                // And it decides on it: f0 and f1 are u's, so another user cannot have them.
                _ = await second.submit(submission(.createUser(collectionId: "c", userId: "v")))
                let outcome = await second.submit(submission(.associateFaces(collectionId: "c", userId: "v", faceIds: ["f0"], userMatchThreshold: 0)))
                guard case .success(let response) = outcome else {
                    Issue.record("\(outcome)")
                    return
                }
                #expect(response["AssociatedFaces"]?.arrayValue.isEmpty == true)
            }
            await connection.close()
        }
    }
}
