import Foundation
import Postgres

extension EventLog {
    /// The advisory lock that serialises appends ("FaceLedg" in ASCII); `append_events()` takes it.
    ///
    /// Why appends are serialised, and why that keeps tailing readers from skipping events, is
    /// explained beside `append_events()` in `migrations/001_event_log.sql`. A caller that must read
    /// under the lock before it appends (a command batch reads the state it decides on) takes it
    /// first; `append_events()` taking it again in the same transaction costs nothing.
    public static let appendLockKey: Int64 = 0x4661_6365_4C65_6467

    /// Appends inside the caller's transaction on `session`; on its own, the statement is its own
    /// transaction.
    ///
    /// The append lock is held until the caller's transaction ends, so keep that short.
    public static func append(_ events: [NewEvent], to collectionId: String, in session: PostgresSession) throws -> [RecordedEvent] {
        guard !events.isEmpty else { return [] }
        // `append_events()` can also check streams' expected versions (its second and third
        // arguments, for an operator's SQL); the ledger never needs to: a batch decides under the
        // append lock, so nothing can append between its reading and its writing.
        return try session.query(
            appendSQL,
            [
                .text(collectionId),
                .textArray([]),
                .int64Array([]),
                .textArray(events.map(\.stream)),
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
            ]
        ).map(RecordedEvent.init(row:))
    }

    private static let appendSQL = """
        SELECT position, collection_id, stream, version, type, schema_version, data, embedding,
               principal, request_id, client_token, operation, source_address, command_id, recorded_at, hash
        FROM append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        """
}
