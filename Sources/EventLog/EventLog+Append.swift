import Foundation
import Postgres

extension EventLog {
    /// The advisory lock that serialises appends ("FaceLedg" in ASCII); `append_events()` takes it.
    ///
    /// Why appends are serialised, and why that keeps tailing readers from skipping events, is
    /// explained beside `append_events()` in `migrations/001_event_log.sql`.
    public static let appendLockKey: Int64 = 0x4661_6365_4C65_6467

    /// The SQLSTATE `append_events()` raises when an expectation does not hold.
    static let wrongExpectedVersionState = SQLState("FL409")

    /// Appends inside the caller's transaction on `session` (see `append(_:to:expecting:)`); on its
    /// own, the statement is its own transaction.
    ///
    /// The append lock is held until the caller's transaction ends, so keep that short.
    public static func append(
        _ events: [NewEvent], to collectionId: String, expecting expectations: [String: ExpectedVersion],
        in session: PostgresSession
    ) throws -> [RecordedEvent] {
        guard !events.isEmpty else { return [] }
        let checked = expectations.compactMap { stream, expected -> (String, Int64)? in
            switch expected {
            case .any: nil
            case .noStream: (stream, 0)
            case .exactly(let version): (stream, Int64(version))
            }
        }.sorted { $0.0 < $1.0 }
        do {
            return try session.query(appendSQL, [
                .text(collectionId),
                .textArray(checked.map(\.0)),
                .int64Array(checked.map(\.1)),
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
            ]).map(RecordedEvent.init(row:))
        } catch let error as PostgresError where error.sqlState == wrongExpectedVersionState {
            throw WrongExpectedVersion(error: error, collectionId: collectionId, expectations: expectations)
        }
    }

    private static let appendSQL = """
        SELECT position, collection_id, stream, version, type, schema_version, data, embedding,
               principal, request_id, client_token, operation, source_address, command_id, recorded_at, hash
        FROM append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        """
}

extension WrongExpectedVersion {
    /// Reads the stream and its actual version from the DETAIL that `append_events()` raises.
    init(error: PostgresError, collectionId: String, expectations: [String: ExpectedVersion]) {
        struct Detail: Decodable {
            let stream: String
            let actual: Int
        }
        let detail = error.detail.flatMap { try? JSONDecoder().decode(Detail.self, from: Data($0.utf8)) }
        let stream = detail?.stream ?? expectations.keys.sorted().first ?? ""
        self.init(collectionId: collectionId, stream: stream, expected: expectations[stream] ?? .any,
                  actual: detail?.actual ?? -1)
    }
}
