import EventLog
import Foundation
import LedgerDomain
import Logging
import Postgres
import Synchronization
import TestSupport
import Testing

@testable import LedgerService

@Suite("The command processor against a real PostgreSQL")
struct CommandProcessorTests {
    private func submission(_ command: LedgerCommand, _ operation: String, token: String? = nil) -> CommandSubmission {
        .test(command, operation, token: token)
    }

    @Test("a batch whose connection is re-established between its commit and its flush is answered as unknown; its token finds it")
    func reconnectBeforeFlush() async throws {
        /// Set while the next flush should find its connection cut.
        final class Armed: Sendable { let value = Atomic<Bool>(false) }
        let armed = Armed()
        try await TestDatabase.withFresh { conninfo in
            try await PostgresConnection.with(conninfo) { killer in
                // Every other session of the test database is the processor's.
                let processor = CommandProcessor(
                    conninfo: conninfo, logger: Logger(label: "test"), biometrics: Biometrics(masterKeys: .ephemeral()),
                    beforeFlush: {
                        guard armed.value.exchange(false, ordering: .acquiringAndReleasing) else { return }
                        _ = try? await killer.query(
                            """
                            SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
                            WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
                            """)
                    })
                try await processor.running {
                    guard case .success = await processor.submit(submission(.createCollection(collectionId: "c", arn: "arn:c"), "CreateCollection"))
                    else {
                        Issue.record("CreateCollection failed")
                        return
                    }
                    armed.value.store(true, ordering: .releasing)
                    let create = submission(.createUser(collectionId: "c", userId: "u"), "CreateUser", token: "token-1")
                    let first = await processor.submit(create)
                    guard case .failure(let error) = first else {
                        Issue.record("answered \(first) though the flush ran on another connection than the commit")
                        return
                    }
                    #expect(error.code == .serviceUnavailable && error.message.contains("unknown"), "\(error)")
                    // It did commit (the server did not stop): the retry with its token gets its response.
                    guard case .success = await processor.submit(create) else {
                        Issue.record("the retry with the same token failed")
                        return
                    }
                    let created = try await killer.query("SELECT count(*) FROM events WHERE type = 'UserCreated'")[0].decode(Int.self, at: 0)
                    #expect(created == 1)
                }
            }
        }
    }

    @Test("when a command is answered, the processor's committed position already holds it: a read after it waits for it")
    func committedBeforeAnswered() async throws {
        try await TestDatabase.withFresh { conninfo in
            let processor = CommandProcessor(conninfo: conninfo, logger: Logger(label: "test"), biometrics: Biometrics(masterKeys: .ephemeral()))
            try await processor.running {
                _ = await processor.submit(submission(.createCollection(collectionId: "c", arn: "arn:c"), "CreateCollection"))
                try await PostgresConnection.with(conninfo) { connection in
                    for n in 0..<200 {
                        guard case .success = await processor.submit(submission(.createUser(collectionId: "c", userId: "u\(n)"), "CreateUser"))
                        else {
                            Issue.record("CreateUser failed")
                            return
                        }
                        // Read at once, as a client's next request would (LedgerAPI waits for this position).
                        let committed = processor.committedPosition
                        let head = try await connection.query("SELECT max(position) FROM events")[0].decode(Int64.self, at: 0)
                        #expect(committed == head, "answered before its position was committed (command \(n))")
                        if committed != head { return }
                    }
                }
            }
        }
    }

    /// With three collections the poison's is the batch's second transaction: its commit, left pending,
    /// is refused in the third one's first round trip (`PostgresSession.transaction(_:committingLater:)`).
    @Test(
        "a command the database refuses fails alone; the rest of its batch commits, and its effect is undone without a refold",
        arguments: [["c"], ["a", "b", "c"]])
    func poisonFailsAlone(collections: [String]) async throws {
        try await TestDatabase.withFresh { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                try await PostgresConnection.with(conninfo) { holder in
                    try await holder.run {
                        try $0.executeScript(
                            """
                            CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
                            BEGIN IF NEW.data::text LIKE '%poison%' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;
                            CREATE TRIGGER refuse_poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_poison();
                            """)
                    }
                    let processor = CommandProcessor(
                        conninfo: conninfo, logger: Logger(label: "test"), biometrics: Biometrics(masterKeys: .ephemeral()))
                    try await processor.running {
                        for collection in collections {
                            let created = await processor.submit(
                                submission(.createCollection(collectionId: collection, arn: "arn:\(collection)"), "CreateCollection"))
                            guard case .success = created else {
                                Issue.record("CreateCollection failed")
                                return
                            }
                        }

                        // Hold the append lock: a first command takes the worker's batch and waits; the others queue
                        // up behind it, and are decided together once the lock is released.
                        try await holder.query("BEGIN")
                        try await holder.query("SELECT pg_advisory_xact_lock($1)", [.int64(EventLog.appendLockKey)])
                        let names = (0..<7).map { "good-\($0)" } + ["poison"] + (7..<14).map { "good-\($0)" }
                        let collectionOf = Dictionary(
                            uniqueKeysWithValues: names.enumerated().map { ($1, collections[$0 % collections.count]) })
                        let outcomes = await withTaskGroup(of: (String, CommandAnswer).self) { group in
                            group.addTask {
                                (
                                    "first",
                                    await processor.submit(self.submission(.createUser(collectionId: collections[0], userId: "first"), "CreateUser"))
                                )
                            }
                            while processor.inFlightCount < 1 { await Task.yield() }
                            for name in names {
                                group.addTask {
                                    (
                                        name,
                                        await processor.submit(
                                            self.submission(.createUser(collectionId: collectionOf[name]!, userId: name), "CreateUser"))
                                    )
                                }
                            }
                            while processor.queuedCount < names.count { await Task.yield() }
                            _ = try? await holder.query("COMMIT")
                            var outcomes: [String: CommandAnswer] = [:]
                            for await (name, outcome) in group { outcomes[name] = outcome }
                            return outcomes
                        }
                        for (name, outcome) in outcomes {
                            switch outcome {
                            case .success: #expect(name != "poison")
                            case .failure(let error): #expect(name == "poison" && error.code == .internalServerError, "\(name): \(error)")
                            }
                        }
                        let created = try await connection.query("SELECT data->>'userId' FROM events WHERE type = 'UserCreated'")
                            .map { try $0.decode(String.self, at: 0) }
                        #expect(Set(created) == Set(["first"] + names.filter { $0 != "poison" }))

                        // The poison's creation left nothing in the write model: once the trigger is gone it can be
                        // created, not refused as a ConflictException.
                        try await holder.query("DROP TRIGGER refuse_poison ON events")
                        let retried = await processor.submit(
                            submission(.createUser(collectionId: collectionOf["poison"]!, userId: "poison"), "CreateUser"))
                        guard case .success = retried else {
                            Issue.record("\(retried)")
                            return
                        }
                    }
                }
            }
        }
    }

    @Test("a command still queued at its deadline is answered 503 and never runs")
    func queuedPastDeadline() async throws {
        try await TestDatabase.withFresh { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                let processor = CommandProcessor(
                    conninfo: conninfo, logger: Logger(label: "test"), biometrics: Biometrics(masterKeys: .ephemeral()),
                    limits: CommandProcessorLimits(deadline: .milliseconds(100)))
                try await PostgresConnection.with(conninfo) { holder in
                    // Once the processor has warmed up (which takes the append lock too), its deadline keeper
                    // runs, but its batches are held up by the append lock.
                    try await processor.running {
                        try await holder.query("BEGIN")
                        try await holder.query("SELECT pg_advisory_xact_lock($1)", [.int64(EventLog.appendLockKey)])
                        let first = await processor.submit(submission(.createCollection(collectionId: "c", arn: "arn:c"), "CreateCollection"))
                        let second = await processor.submit(submission(.createCollection(collectionId: "d", arn: "arn:d"), "CreateCollection"))
                        for outcome in [first, second] {
                            guard case .failure(let error) = outcome else {
                                Issue.record("answered \(outcome)")
                                continue
                            }
                            #expect(error.code == .serviceUnavailable)
                        }
                        try await holder.query("COMMIT")
                    }
                    // The second never started (it waited in the queue); the first may have committed later, as
                    // its client was told ("outcome unknown"). Nothing of "d" is in the log.
                    let d = try await connection.query("SELECT count(*) FROM events WHERE collection_id = 'd'")[0].decode(Int.self, at: 0)
                    #expect(d == 0)
                }
            }
        }
    }
}
