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

    /// Where and when an appended event landed: all its caller needs to know of it (the rest is what
    /// the caller sent, so it is not sent back).
    public struct Appended: Sendable, Hashable {
        public var position: Int64
        /// The database's clock at append, never earlier than the previous event's.
        public var recordedAt: Date
    }

    /// Appends inside the caller's transaction on `session`; on its own, the statement is its own
    /// transaction. Returns where and when each event landed, in order.
    ///
    /// The append lock is held until the caller's transaction ends, so keep that short.
    public static func append(_ events: [NewEvent], to collectionId: String, in session: PostgresSession) throws -> [Appended] {
        guard !events.isEmpty else { return [] }
        return try session.query(
            "SELECT position, recorded_at FROM append_events(\(appendArguments))", appendParameters(events, to: collectionId)
        ).map { Appended(position: try $0.decode(at: 0), recordedAt: try $0.decode(at: 1)) }
    }

    /// `append(_:to:in:)`, returning the events as recorded: every column, the hash too.
    static func appendRecording(_ events: [NewEvent], to collectionId: String, in session: PostgresSession) throws -> [RecordedEvent] {
        guard !events.isEmpty else { return [] }
        return try session.query(
            """
            SELECT position, collection_id, stream, version, type, schema_version, data, embedding,
                   principal, request_id, client_token, operation, source_address, command_id, recorded_at, hash
            FROM append_events(\(appendArguments))
            """, appendParameters(events, to: collectionId)
        ).map(RecordedEvent.init(row:))
    }

    /// The statement that appends `events` right after `head`, all recorded at its time
    /// (`append_events_at()`, migration 013), and where each event lands.
    ///
    /// For a caller that holds the append lock and read the log's head under it: knowing where the
    /// events land before they are sent, it can send the append together with what follows from it, and
    /// its `COMMIT`, in one round trip. The database checks the choice and refuses the append (SQLSTATE
    /// FL417) if the log has moved past it.
    public static func appending(
        _ events: [NewEvent], to collectionId: String, after head: Head
    ) -> (statement: PostgresStatement, appended: [Appended]) {
        var parameters = appendParameters(events, to: collectionId)
        // append_events_at() takes the first position and the time where append_events() takes
        // expected versions, which the ledger never sends (see `appendParameters`).
        parameters[1] = .int64(head.position + 1)
        parameters[2] = .timestamp(head.nextRecordedAt)
        let appended = events.indices.map { Appended(position: head.position + 1 + Int64($0), recordedAt: head.nextRecordedAt) }
        return (PostgresStatement("SELECT append_events_at(\(appendArguments))", parameters), appended)
    }

    /// The log's head as an appender holding the append lock sees it: the last position, and the time
    /// its next events are recorded at (the database's clock, never earlier than the last event's).
    public struct Head: Sendable, Hashable {
        public var position: Int64
        public var nextRecordedAt: Date

        public init(position: Int64, nextRecordedAt: Date) {
            self.position = position
            self.nextRecordedAt = nextRecordedAt
        }

        /// The head after `appended`, the last events appended after this one.
        public func advanced(past appended: [Appended]) -> Head {
            Head(position: appended.last?.position ?? position, nextRecordedAt: nextRecordedAt)
        }

        /// The head's two columns, for a select list: the last position (0 for an empty log) and the
        /// time to record the next events at.
        public static let columns = """
            coalesce((SELECT max(position) FROM events), 0)::bigint,
            greatest(clock_timestamp(), (SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1))
            """
    }

    private static let appendArguments = "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14"

    private static func appendParameters(_ events: [NewEvent], to collectionId: String) -> [PostgresValue] {
        // `append_events()` can also check streams' expected versions (its second and third
        // arguments, for an operator's SQL); the ledger never needs to: a batch decides under the
        // append lock, so nothing can append between its reading and its writing.
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
    }
}
