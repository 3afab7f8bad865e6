import Crypto
import Postgres

/// The hash chain of the event log, computed here exactly as `append_events()` computes it in the
/// database (the encoding is documented once, at the top of `migrations/006_hash_chain.sql`):
///
///     hash = SHA-256( field(previous hash, NULL for the first event) || field(position) || … || field(recorded_at) )
///     field(NULL) = ff ff ff ff;  field(bytes) = 4-byte big-endian length || bytes
///
/// Each column is taken in PostgreSQL's binary wire format, which is what a binary-mode query returns
/// (with client_encoding UTF8), so `verify` hashes the very bytes it received: no decoding, no
/// rounding of timestamps.
public enum HashChain {
    /// The columns an event is hashed over, in the encoding's order; `hash` follows them.
    public static let columns = [
        "position", "collection_id", "stream", "version", "type", "schema_version", "data", "embedding",
        "principal", "request_id", "client_token", "operation", "source_address", "command_id", "recorded_at",
    ]

    /// SHA-256 over the previous hash and the event's column bytes (in `columns` order, nil for NULL).
    public static func hash(previous: [UInt8]?, columns values: [[UInt8]?]) -> [UInt8] {
        var hasher = SHA256()
        update(&hasher, with: previous)
        for value in values { update(&hasher, with: value) }
        return Array(hasher.finalize())
    }

    /// The hash of a row selected as `columns` (plus anything after them), from its raw cells.
    ///
    /// `data` arrives as binary jsonb, a version byte (1) before the text; the chain covers the text
    /// (`jsonb::text`), so the version byte is dropped.
    public static func hash(previous: [UInt8]?, row: PostgresRow) throws -> [UInt8] {
        var values: [[UInt8]?] = []
        values.reserveCapacity(columns.count)
        for index in columns.indices {
            let cell = row.cell(index)
            if cell.column.typeOID == PostgresType.jsonb, let bytes = cell.bytes {
                guard bytes.first == 1 else {
                    throw PostgresError(.decoding, serverMessage: "column \(cell.column.name): unknown jsonb format \(bytes.first ?? 0)")
                }
                values.append(Array(bytes.dropFirst()))
            } else {
                values.append(cell.bytes)
            }
        }
        return hash(previous: previous, columns: values)
    }

    /// Hashes one field: its length (or -1 for NULL) as a 4-byte big-endian integer, then its bytes.
    /// Updating the hasher field by field hashes the same bytes as the database's concatenation.
    private static func update(_ hasher: inout SHA256, with value: [UInt8]?) {
        guard let value else {
            hasher.update(data: [0xFF, 0xFF, 0xFF, 0xFF])
            return
        }
        let length = UInt32(value.count)
        hasher.update(data: [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)])
        hasher.update(data: value)
    }
}
