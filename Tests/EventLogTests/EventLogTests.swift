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
