import Foundation
import Postgres

extension EventLog {
    /// The advisory lock that serialises appends ("FaceLedg" in ASCII).
    ///
    /// Identity values are drawn in the order appends *start*, but become visible in the order they
    /// *commit*; a reader tailing `position > checkpoint` would skip an event whose transaction
    /// commits after a later position's. Holding one transaction-scoped lock from before the
    /// positions are drawn until commit makes the two orders the same. PostgreSQL makes a commit
    /// visible before it releases the transaction's locks, so the next append cannot draw a position
    /// before the previous one is visible. Concurrency is recovered by putting many events (and,
    /// later, many commands) into one append, and the same order is what a hash chain needs.
    public static let appendLockKey: Int64 = 0x4661_6365_4C65_6467

    /// Appends inside the caller's transaction on `session` (see `append(_:to:expecting:)`).
    ///
    /// Takes the append lock, checks the expectations, then inserts the whole batch in one
    /// statement. The lock is held until the caller's transaction ends, so keep that short.
    public static func append(
        _ events: [NewEvent], to collectionId: String, expecting expectations: [String: ExpectedVersion],
        in session: PostgresSession
    ) throws -> [RecordedEvent] {
        guard !events.isEmpty else { return [] }
        try session.query("SELECT pg_advisory_xact_lock($1)", [.int64(appendLockKey)])

        let streams = Set(events.map(\.stream)).union(expectations.keys).sorted()
        var versions: [String: Int] = [:]
        for row in try session.query(
            "SELECT stream, max(version) FROM events WHERE collection_id = $1 AND stream = ANY($2) GROUP BY stream",
            [.text(collectionId), .textArray(streams)])
        {
            versions[try row.decode(String.self, at: 0)] = try row.decode(Int.self, at: 1)
        }
        for (stream, expected) in expectations.sorted(by: { $0.key < $1.key }) {
            let actual = versions[stream] ?? 0
            guard expected.admits(actual) else {
                throw WrongExpectedVersion(collectionId: collectionId, stream: stream, expected: expected, actual: actual)
            }
        }

        var assigned: [Int64?] = []
        for event in events {
            let next = (versions[event.stream] ?? 0) + 1
            versions[event.stream] = next
            assigned.append(Int64(next))
        }
        return try session.query(insertSQL, [
            .text(collectionId),
            .textArray(events.map(\.stream)),
            .int64Array(assigned),
            .textArray(events.map(\.type)),
            .int64Array(events.map { Int64($0.schemaVersion) }),
            .jsonbArray(events.map(\.data)),
            .byteaArray(events.map(\.embedding)),
            .textArray(events.map(\.metadata.principal)),
            .textArray(events.map(\.metadata.requestId)),
            .textArray(events.map(\.metadata.clientToken)),
            .textArray(events.map(\.metadata.operation)),
            .textArray(events.map(\.metadata.sourceAddress)),
            .uuidArray(events.map(\.metadata.commandId)),
        ]).map(RecordedEvent.init(row:))
    }

    /// One statement for the whole batch. `recorded_at` is the database clock, but never earlier
    /// than the last event's, so times never decrease along positions ("as of T" is a prefix).
    private static let insertSQL = """
        INSERT INTO events (collection_id, stream, version, type, schema_version, data, embedding,
                            principal, request_id, client_token, operation, source_address, command_id, recorded_at)
        SELECT $1, e.stream, e.version, e.type, e.schema_version, e.data, e.embedding,
               e.principal, e.request_id, e.client_token, e.operation, e.source_address, e.command_id, clock.now
        FROM unnest($2::text[], $3::int8[], $4::text[], $5::int8[], $6::jsonb[], $7::bytea[],
                    $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::uuid[])
                 WITH ORDINALITY AS e(stream, version, type, schema_version, data, embedding,
                                      principal, request_id, client_token, operation, source_address, command_id, n)
        CROSS JOIN (SELECT greatest(clock_timestamp(),
                                    (SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1)) AS now) AS clock
        ORDER BY e.n
        RETURNING position, collection_id, stream, version, type, schema_version, data, embedding,
                  principal, request_id, client_token, operation, source_address, command_id, recorded_at
        """
}
