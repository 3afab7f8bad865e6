import Foundation

/// A column of a result: its name and type OID.
public struct PostgresColumn: Sendable, Hashable {
    public let name: String
    public let typeOID: UInt32
}

/// One value of a row, still in PostgreSQL's binary format (nil for SQL NULL).
public struct PostgresCell: Sendable {
    public let column: PostgresColumn
    public let bytes: [UInt8]?
}

/// A result row, copied out of libpq so it can cross threads.
public struct PostgresRow: Sendable {
    public let columns: [PostgresColumn]
    let cells: [[UInt8]?]

    /// The cell at a column index.
    public func cell(_ index: Int) -> PostgresCell {
        PostgresCell(column: columns[index], bytes: cells[index])
    }

    /// Decodes the column at `index` as `T`.
    public func decode<T: PostgresDecodable>(_: T.Type = T.self, at index: Int) throws -> T {
        guard index >= 0, index < columns.count else {
            throw PostgresError(.decoding, serverMessage: "no column at index \(index)")
        }
        return try T.decode(from: cell(index))
    }
}

/// A Swift type that can be read from a result column.
public protocol PostgresDecodable: Sendable {
    static func decode(from cell: PostgresCell) throws -> Self
}

extension PostgresCell {
    /// The bytes of a non-NULL cell, or a decoding error naming the column.
    func requireBytes<T>(as _: T.Type) throws -> [UInt8] {
        guard let bytes else {
            throw PostgresError(.decoding, serverMessage: "column \(column.name) is NULL, expected \(T.self)")
        }
        return bytes
    }

    func mismatch<T>(_: T.Type) -> PostgresError {
        PostgresError(.decoding, serverMessage: "column \(column.name) of type \(column.typeOID) is not \(T.self)")
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Wrapped? {
        cell.bytes == nil ? nil : try Wrapped.decode(from: cell)
    }
}

extension String: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> String {
        let bytes = try cell.requireBytes(as: String.self)
        switch cell.column.typeOID {
        case PostgresType.text, PostgresType.varchar, PostgresType.name, PostgresType.bpchar, PostgresType.json,
            PostgresType.char:
            return String(decoding: bytes, as: UTF8.self)
        case PostgresType.jsonb:
            guard bytes.first == 1 else { throw cell.mismatch(String.self) }
            return String(decoding: bytes.dropFirst(), as: UTF8.self)
        default:
            throw cell.mismatch(String.self)
        }
    }
}

extension Int64: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Int64 {
        var reader = ByteReader(try cell.requireBytes(as: Int64.self))
        switch cell.column.typeOID {
        case PostgresType.int8: return try reader.read(Int64.self)
        case PostgresType.int4: return Int64(try reader.read(Int32.self))
        case PostgresType.int2: return Int64(try reader.read(Int16.self))
        case PostgresType.oid: return Int64(try reader.read(UInt32.self))
        case PostgresType.xid8:
            let value = try reader.read(UInt64.self)
            guard let exact = Int64(exactly: value) else { throw cell.mismatch(Int64.self) }
            return exact
        default: throw cell.mismatch(Int64.self)
        }
    }
}

extension Int: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Int { Int(try Int64.decode(from: cell)) }
}

extension Int32: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Int32 {
        guard let value = Int32(exactly: try Int64.decode(from: cell)) else { throw cell.mismatch(Int32.self) }
        return value
    }
}

extension Double: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Double {
        var reader = ByteReader(try cell.requireBytes(as: Double.self))
        switch cell.column.typeOID {
        case PostgresType.float8: return Double(bitPattern: try reader.read(UInt64.self))
        case PostgresType.float4: return Double(Float(bitPattern: try reader.read(UInt32.self)))
        default: throw cell.mismatch(Double.self)
        }
    }
}

extension Bool: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Bool {
        let bytes = try cell.requireBytes(as: Bool.self)
        guard cell.column.typeOID == PostgresType.bool, bytes.count == 1 else { throw cell.mismatch(Bool.self) }
        return bytes[0] != 0
    }
}

extension UUID: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> UUID {
        let b = try cell.requireBytes(as: UUID.self)
        guard cell.column.typeOID == PostgresType.uuid, b.count == 16 else { throw cell.mismatch(UUID.self) }
        return UUID(
            uuid: (
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
            ))
    }
}

extension Date: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Date {
        var reader = ByteReader(try cell.requireBytes(as: Date.self))
        guard cell.column.typeOID == PostgresType.timestamptz || cell.column.typeOID == PostgresType.timestamp
        else { throw cell.mismatch(Date.self) }
        return PostgresTime.date(fromMicroseconds: try reader.read(Int64.self))
    }
}

extension Array: PostgresDecodable where Element == UInt8 {
    public static func decode(from cell: PostgresCell) throws -> [UInt8] {
        let bytes = try cell.requireBytes(as: [UInt8].self)
        guard cell.column.typeOID == PostgresType.bytea else { throw cell.mismatch([UInt8].self) }
        return bytes
    }
}

/// A `text[]` column as Swift strings.
public struct PostgresTextArray: PostgresDecodable, Hashable {
    public let elements: [String?]

    public static func decode(from cell: PostgresCell) throws -> PostgresTextArray {
        let bytes = try cell.requireBytes(as: PostgresTextArray.self)
        guard cell.column.typeOID == PostgresType.textArray else { throw cell.mismatch(PostgresTextArray.self) }
        let (_, raw) = try PostgresArray.decodeElements(bytes)
        return PostgresTextArray(elements: raw.map { $0.map { String(decoding: $0, as: UTF8.self) } })
    }
}
