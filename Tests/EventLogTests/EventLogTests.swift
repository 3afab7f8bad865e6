import EventLog
import Foundation
import Postgres
import TestSupport
import Testing

@Suite("The event log")
struct EventLogTests {
    static func metadata(_ operation: String = "Test", principal: String = "tester") -> EventMetadata {
        EventMetadata(
            principal: principal, requestId: UUID().uuidString, clientToken: "token-1", operation: operation,
            sourceAddress: "127.0.0.1", commandId: UUID())
    }

    static func event(_ stream: String, _ type: String = "Happened", data: String = "{}") -> NewEvent {
        NewEvent(stream: stream, type: type, data: data, metadata: metadata())
    }

    @Test("appended events come back with versions, positions and every metadata field")
    func appendAndRead() async throws {
        try await TestDatabase.withFresh { conninfo in
            let log = EventLog(pool: PostgresPool(conninfo: conninfo))
            let meta = Self.metadata("AssociateFaces", principal: "alice")
            let embedding: [UInt8] = [1, 2, 3, 4]
            let recorded = try await log.append(
                [
                    NewEvent(stream: "user/u1", type: "UserCreated", data: #"{"userId":"u1"}"#, metadata: meta),
                    NewEvent(
                        stream: "user/u1", type: "FaceAssociated", schemaVersion: 2, data: #"{"faceId":"f"}"#,
                        embedding: embedding, metadata: meta),
                ], to: "c1")
            #expect(recorded.map(\.version) == [1, 2])
            #expect(recorded[1].position > recorded[0].position)

            let stream = try await log.readStream("user/u1", in: "c1")
            #expect(stream == recorded)
            #expect(stream[1].metadata == meta)
            #expect(stream[1].embedding == embedding)
            #expect(stream[1].schemaVersion == 2)
            #expect(stream[0].embedding == nil)
            #expect(stream[0].recordedAt <= stream[1].recordedAt)
            #expect(try await log.readStream("user/u1", in: "another collection").isEmpty)
            #expect(try await log.read(after: recorded[0].position) == [recorded[1]])
            #expect(try await log.headPosition() == recorded[1].position)
        }
    }

    @Test("an append plans once per session, and plans made on an empty log read it by its indexes as it grows")
    func appendPlansOncePerSession() async throws {
        try await TestDatabase.withFresh { conninfo in
            try await PostgresConnection.with(conninfo) { connection in
                let settings = try await connection.query(
                    "SELECT array_to_string(proconfig, ',') FROM pg_proc WHERE proname = 'append_events'")
                #expect(try settings[0].decode(String.self, at: 0).contains("plan_cache_mode=force_generic_plan"))
                // The session's first append makes its plans, on an empty log.
                _ = try await connection.run { session in
                    try session.transaction { try EventLog.append([Self.event("s")], to: "c", in: session) }
                }
                let scans = try await connection.run { session in
                    try session.transaction {
                        for index in 0..<3 {
                            _ = try EventLog.append([Self.event("s"), Self.event("t\(index)")], to: "c", in: session)
                        }
                        // This transaction's own scans of the log (not yet sent to the statistics collector).
                        return try session.query("SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'events'")
                    }
                }
                #expect(try scans[0].decode(Int64.self, at: 0) == 0)
                #expect(try scans[0].decode(Int64.self, at: 1) > 0)
            }
        }
    }

    @Test("an append at the head read under the lock lands right after it, chained, and is refused once the log moved")
    func appendAtTheHead() async throws {
        try await TestDatabase.withFresh { conninfo in
            let log = EventLog(pool: PostgresPool(conninfo: conninfo))
            try await PostgresConnection.with(conninfo) { connection in
                let first = try await log.append([Self.event("s")], to: "c")
                // A rolled-back append took a position that was never committed.
                _ = try? await connection.run { session in
                    try session.transaction {
                        _ = try EventLog.append([Self.event("s")], to: "c", in: session)
                        throw CancellationError()
                    }
                }
                let (read, appended) = try await connection.run { session in
                    try session.transaction {
                        _ = try session.query("SELECT pg_advisory_xact_lock($1)", [.int64(EventLog.appendLockKey)])
                        let row = try session.query("SELECT \(EventLog.Head.columns)")[0]
                        let read = EventLog.Head(position: try row.decode(at: 0), nextRecordedAt: try row.decode(at: 1))
                        let (statement, appended) = EventLog.appending(
                            [Self.event("s"), Self.event("t")], to: "c", after: read)
                        _ = try session.execute(statement.sql, statement.parameters)
                        return (read, appended)
                    }
                }
                #expect(read.position == first[0].position)
                #expect(read.nextRecordedAt >= first[0].recordedAt)
                // Right after the head, over the position the rolled-back append had taken.
                #expect(appended.map(\.position) == [first[0].position + 1, first[0].position + 2])
                let stored = try await log.read(after: first[0].position)
                #expect(stored.map(\.position) == appended.map(\.position))
                #expect(stored.map(\.recordedAt) == [read.nextRecordedAt, read.nextRecordedAt])
                #expect(stored.map(\.version) == [2, 1])
                // Chained like any append; the identity column's sequence follows, and append_events() comes after.
                let rows = try await connection.query(HashChainTests.rowsSQL)
                var previous: [UInt8]?
                for row in rows {
                    let hash: [UInt8] = try row.decode(at: HashChain.columns.count)
                    #expect(try HashChain.hash(previous: previous, row: row) == hash)
                    previous = hash
                }
                let sequence = try await connection.query("SELECT last_value FROM events_position_seq")
                #expect(try sequence[0].decode(Int64.self, at: 0) == appended[1].position)
                let next = try await log.append([Self.event("s")], to: "c")
                #expect(next[0].position == appended[1].position + 1)

                // A head the log has moved past, or a time before the last event's, is refused; nothing lands.
                for stale in [read, EventLog.Head(position: next[0].position, nextRecordedAt: Date(timeIntervalSince1970: 0))] {
                    let error = await #expect(throws: PostgresError.self) {
                        try await connection.run { session in
                            let (statement, _) = EventLog.appending([Self.event("s")], to: "c", after: stale)
                            _ = try session.execute(statement.sql, statement.parameters)
                        }
                    }
                    #expect(error?.sqlState == SQLState("FL417"))
                }
                #expect(try await log.headPosition() == next[0].position)
            }
        }
    }

    @Test("the database itself refuses UPDATE, DELETE and TRUNCATE on the log")
    func appendOnly() async throws {
        try await TestDatabase.withFresh { conninfo in
            let pool = PostgresPool(conninfo: conninfo)
            let log = EventLog(pool: pool)
            try await log.append([Self.event("s")], to: "c")
            for statement in ["UPDATE events SET type = 'Forged'", "DELETE FROM events", "TRUNCATE events"] {
                let error = await #expect(throws: PostgresError.self) { try await pool.query(statement) }
                #expect(error?.sqlState == .raiseException, "\(statement)")
            }
            #expect(try await log.readStream("s", in: "c").map(\.type) == ["Happened"])
        }
    }

    @Test("every append notifies listeners when it commits")
    func notifies() async throws {
        try await TestDatabase.withFresh { conninfo in
            let listener = PostgresListener(conninfo: conninfo, channels: [EventLog.notificationChannel])
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await listener.run() }
                var events = listener.events.makeAsyncIterator()
                #expect(await events.next() == .connected)
                try await EventLog(pool: PostgresPool(conninfo: conninfo)).append([Self.event("s")], to: "c")
                #expect(await events.next() == .notification(PostgresNotification(channel: EventLog.notificationChannel, payload: "")))
                group.cancelAll()
            }
        }
    }
}

@Suite("Random UUIDs")
struct RandomUUIDTests {
    @Test("UUID.random() makes version 4 UUIDs of the RFC 4122 variant, all different")
    func versionAndVariant() {
        let uuids = (0..<10_000).map { _ in UUID.random() }
        #expect(Set(uuids).count == uuids.count)
        for uuid in uuids {
            #expect(uuid.uuid.6 >> 4 == 4)
            #expect(uuid.uuid.8 >> 6 == 0b10)
        }
        // Every other bit varies.
        var seenOnes = [UInt8](repeating: 0, count: 16)
        var seenZeros = [UInt8](repeating: 0, count: 16)
        for uuid in uuids {
            withUnsafeBytes(of: uuid.uuid) { bytes in
                for index in 0..<16 {
                    seenOnes[index] |= bytes[index]
                    seenZeros[index] |= ~bytes[index]
                }
            }
        }
        var fixedOnes = [UInt8](repeating: 0, count: 16)
        var fixedZeros = [UInt8](repeating: 0, count: 16)
        (fixedOnes[6], fixedZeros[6], fixedOnes[8], fixedZeros[8]) = (0x40, 0xB0, 0x80, 0x40)
        #expect(seenOnes == (0..<16).map { ~fixedZeros[$0] })
        #expect(seenZeros == (0..<16).map { ~fixedOnes[$0] })
    }
}
