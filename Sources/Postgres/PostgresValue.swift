import Foundation

/// A query parameter. Values travel in PostgreSQL's binary format with their type named, so no value
/// is ever spliced into SQL text.
public enum PostgresValue: Sendable, Hashable {
    case null
    case text(String)
    case int32(Int32)
    case int64(Int64)
    case float64(Double)
    case bool(Bool)
    case uuid(UUID)
    case timestamp(Date)
    case bytea([UInt8])
    /// JSON text, sent as `jsonb`.
    case jsonb(String)
    /// One-dimensional arrays, for batches (`unnest`); nil elements are SQL NULLs.
    case textArray([String?])
    case int64Array([Int64?])
    case float64Array([Double?])
    case timestampArray([Date?])
    case uuidArray([UUID?])
    case byteaArray([[UInt8]?])
    case jsonbArray([String?])
}

extension PostgresValue {
    /// The type OID sent with the parameter; 0 lets the server infer it (for NULL).
    var typeOID: UInt32 {
        switch self {
        case .null: 0
        case .text: PostgresType.text
        case .int32: PostgresType.int4
        case .int64: PostgresType.int8
        case .float64: PostgresType.float8
        case .bool: PostgresType.bool
        case .uuid: PostgresType.uuid
        case .timestamp: PostgresType.timestamptz
        case .bytea: PostgresType.bytea
        case .jsonb: PostgresType.jsonb
        case .textArray: PostgresType.textArray
        case .int64Array: PostgresType.int8Array
        case .float64Array: PostgresType.float8Array
        case .timestampArray: PostgresType.timestamptzArray
        case .uuidArray: PostgresType.uuidArray
        case .byteaArray: PostgresType.byteaArray
        case .jsonbArray: PostgresType.jsonbArray
        }
    }

    /// The binary wire representation, or nil for NULL.
    var binary: [UInt8]? {
        switch self {
        case .null: return nil
        case .text(let s): return Array(s.utf8)
        case .int32(let v): return v.bigEndianBytes
        case .int64(let v): return v.bigEndianBytes
        case .float64(let v): return v.bitPattern.bigEndianBytes
        case .bool(let v): return [v ? 1 : 0]
        case .uuid(let u): return withUnsafeBytes(of: u.uuid) { Array($0) }
        case .timestamp(let d): return PostgresTime.microseconds(from: d).bigEndianBytes
        case .bytea(let b): return b
        case .jsonb(let s): return [1] + Array(s.utf8)
        case .textArray(let elements):
            return PostgresArray.encode(elements.map { $0.map { Self.text($0).binary! } }, elementType: PostgresType.text)
        case .int64Array(let elements):
            return PostgresArray.encode(elements.map { $0.map { Self.int64($0).binary! } }, elementType: PostgresType.int8)
        case .float64Array(let elements):
            return PostgresArray.encode(elements.map { $0.map { Self.float64($0).binary! } }, elementType: PostgresType.float8)
        case .timestampArray(let elements):
            return PostgresArray.encode(elements.map { $0.map { Self.timestamp($0).binary! } }, elementType: PostgresType.timestamptz)
        case .uuidArray(let elements):
            return PostgresArray.encode(elements.map { $0.map { Self.uuid($0).binary! } }, elementType: PostgresType.uuid)
        case .byteaArray(let elements):
            return PostgresArray.encode(elements, elementType: PostgresType.bytea)
        case .jsonbArray(let elements):
            return PostgresArray.encode(elements.map { $0.map { Self.jsonb($0).binary! } }, elementType: PostgresType.jsonb)
        }
    }
}

extension PostgresValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int64(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
}

/// The type OIDs the layer encodes or decodes.
public enum PostgresType {
    public static let bool: UInt32 = 16
    public static let bytea: UInt32 = 17
    public static let char: UInt32 = 18
    public static let name: UInt32 = 19
    public static let int8: UInt32 = 20
    public static let int2: UInt32 = 21
    public static let int4: UInt32 = 23
    public static let text: UInt32 = 25
    public static let oid: UInt32 = 26
    public static let json: UInt32 = 114
    public static let float4: UInt32 = 700
    public static let float8: UInt32 = 701
    public static let byteaArray: UInt32 = 1001
    public static let textArray: UInt32 = 1009
    public static let int8Array: UInt32 = 1016
    public static let float8Array: UInt32 = 1022
    public static let timestamptzArray: UInt32 = 1185
    public static let uuidArray: UInt32 = 2951
    public static let jsonbArray: UInt32 = 3807
    public static let bpchar: UInt32 = 1042
    public static let varchar: UInt32 = 1043
    public static let timestamp: UInt32 = 1114
    public static let timestamptz: UInt32 = 1184
    public static let uuid: UInt32 = 2950
    public static let jsonb: UInt32 = 3802
    public static let xid8: UInt32 = 5069
}

/// PostgreSQL's binary timestamps count microseconds from 2000-01-01 00:00:00 UTC.
enum PostgresTime {
    static let epochOffset: TimeInterval = 946_684_800

    static func microseconds(from date: Date) -> Int64 {
        Int64(((date.timeIntervalSince1970 - epochOffset) * 1_000_000).rounded())
    }

    static func date(fromMicroseconds micros: Int64) -> Date {
        Date(timeIntervalSince1970: Double(micros) / 1_000_000 + epochOffset)
    }
}

/// One-dimensional arrays in the binary array format.
enum PostgresArray {
    /// Encodes elements already in their binary format.
    static func encode(_ elements: [[UInt8]?], elementType: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        out += Int32(1).bigEndianBytes  // dimensions
        out += Int32(elements.contains { $0 == nil } ? 1 : 0).bigEndianBytes  // has nulls
        out += elementType.bigEndianBytes
        out += Int32(clamping: elements.count).bigEndianBytes
        out += Int32(1).bigEndianBytes  // lower bound
        for element in elements {
            if let bytes = element {
                // Clamped, not trapping: an element this large makes the whole parameter too large,
                // which `PostgresParameters` refuses before it reaches libpq.
                out += Int32(clamping: bytes.count).bigEndianBytes
                out += bytes
            } else {
                out += Int32(-1).bigEndianBytes
            }
        }
        return out
    }

    /// Decodes a one-dimensional array's elements as raw cells (nil for NULL elements).
    static func decodeElements(_ bytes: [UInt8]) throws -> (elementType: UInt32, elements: [[UInt8]?]) {
        var reader = ByteReader(bytes)
        let dimensions = try reader.read(Int32.self)
        _ = try reader.read(Int32.self)  // has-nulls flag
        let elementType = try reader.read(UInt32.self)
        if dimensions == 0 { return (elementType, []) }
        guard dimensions == 1 else { throw PostgresError(.decoding, serverMessage: "multi-dimensional array") }
        let count = try reader.read(Int32.self)
        _ = try reader.read(Int32.self)  // lower bound
        var elements: [[UInt8]?] = []
        elements.reserveCapacity(Int(max(count, 0)))
        for _ in 0..<max(count, 0) {
            let length = try reader.read(Int32.self)
            elements.append(length < 0 ? nil : try reader.bytes(Int(length)))
        }
        return (elementType, elements)
    }
}

struct ByteReader {
    private let bytes: [UInt8]
    private var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let raw = try self.bytes(MemoryLayout<T>.size)
        return raw.reduce(T.zero) { ($0 << 8) | T($1) }
    }

    mutating func bytes(_ count: Int) throws -> [UInt8] {
        guard count >= 0, offset + count <= bytes.count else {
            throw PostgresError(.decoding, serverMessage: "truncated binary value")
        }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }
}

extension FixedWidthInteger {
    var bigEndianBytes: [UInt8] { withUnsafeBytes(of: self.bigEndian) { Array($0) } }
}
