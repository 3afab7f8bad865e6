import Foundation

/// Any JSON value: requests and responses kept verbatim inside events.
///
/// Numbers come in two kinds, as in the Rekognition model: `integer` for integer members (StatusCode,
/// FaceCount, Position) and `number` for floating-point ones (Confidence, Similarity, a threshold, a
/// time), which `data` always writes as a float (`100.0`, never `100`), as AWS does. Both kinds equal
/// each other when they hold the same number: JSON itself does not tell them apart.
public enum JSONValue: Sendable, Codable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Decoding through a `Decoder` cannot see how a number was written, so a whole number comes back
    /// as `integer`; `JSONValue(parsing:)` keeps the kind.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let integer = try? container.decode(Int.self) {
            self = .integer(integer)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let string = try? container.decode(String.self) {
            self = .string(string)
        } else if let array = try? container.decode([JSONValue].self) {
            self = .array(array)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Any `Encodable` as a JSON value, built directly (not through JSON text, which would lose
    /// whether a whole number was a `Double` or an `Int`). Throws for a non-finite number, like
    /// `JSONEncoder`.
    public init(encoding value: some Encodable) throws {
        self = try JSONValueEncoder.encode(value)
    }

    /// JSON text as a value, numbers keeping their kind: `100.0` is a `number`, `100` an `integer`.
    public init(parsing data: Data) throws {
        self = Self.converting(try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]))
    }

    private static func converting(_ object: Any) -> JSONValue {
        switch object {
        case let string as String: return .string(string)
        case let array as [Any]: return .array(array.map(converting))
        case let dictionary as [String: Any]: return .object(dictionary.mapValues(converting))
        case let number as NSNumber:
            // JSONSerialization makes booleans of type "c", integer literals "q"/"Q"/"i", others "d".
            switch String(cString: number.objCType) {
            case "c": return .bool(number.boolValue)
            case "d", "f": return .number(number.doubleValue)
            default: return Int(exactly: number).map(JSONValue.integer) ?? .number(number.doubleValue)
            }
        default: return .null
        }
    }

    /// The value as canonical JSON bytes (sorted keys, no whitespace, floats as floats).
    public var data: Data { Data(text.utf8) }

    /// The value as canonical JSON text (`data`, as a string).
    public var text: String {
        var text = ""
        write(to: &text)
        return text
    }

    private func write(to text: inout String) {
        switch self {
        case .null: text += "null"
        case .bool(let value): text += value ? "true" : "false"
        case .integer(let value): text += String(value)
        case .number(let value):
            // `description` is the shortest text that reads back exactly and keeps `.0` on whole numbers
            // ("100.0", "0.1", "1e+22"); JSON has no NaN or infinity.
            text += value.isFinite ? value.description : "null"
        case .string(let value): Self.write(value, to: &text)
        case .array(let values):
            text += "["
            for (index, value) in values.enumerated() {
                if index > 0 { text += "," }
                value.write(to: &text)
            }
            text += "]"
        case .object(let members):
            text += "{"
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { text += "," }
                Self.write(key, to: &text)
                text += ":"
                members[key]!.write(to: &text)
            }
            text += "}"
        }
    }

    private static func write(_ string: String, to text: inout String) {
        text += "\""
        // Most strings (ids, names, hashes) have nothing to escape: appended whole.
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            text += string
            text += "\""
            return
        }
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case "\u{08}": text += "\\b"
            case "\u{0C}": text += "\\f"
            case "\u{00}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}

extension JSONValue: Hashable {
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.integer, .number), (.number, .integer), (.number, .number): lhs.doubleValue == rhs.doubleValue
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value): hasher.combine(value)
        case .integer, .number: hasher.combine(doubleValue)
        case .string(let value): hasher.combine(value)
        case .array(let value): hasher.combine(value)
        case .object(let value): hasher.combine(value)
        }
    }

    /// The number as a `Double`, nil for anything else.
    public var doubleValue: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .number(let value): value
        default: nil
        }
    }
}

/// JSON with sorted keys and no extra whitespace: the same value always gives the same bytes.
public enum CanonicalJSON {
    public static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    public static func string(_ value: some Encodable) throws -> String {
        String(decoding: try encode(value), as: UTF8.self)
    }
}

extension JSONValue {
    /// The member `key` of an object; nil for anything else or a missing member.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members[key]
    }

    public var stringValue: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }

    /// The elements of an array; empty for anything else.
    public var arrayValue: [JSONValue] {
        guard case .array(let values) = self else { return [] }
        return values
    }
}
