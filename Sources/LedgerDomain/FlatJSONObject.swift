/// A JSON object whose members are all plain strings (no escapes), numbers, booleans or null, read
/// without Foundation.
///
/// The payloads of the events a fold meets most (faces imported and associated) are such objects, and
/// Foundation's `JSONDecoder` was the largest single cost of a rebuild. `LedgerEvent.decode` reads
/// those types through this first and falls back to `JSONDecoder` for anything it declines (an escape
/// in a string, a nested value, a malformed text), so both always agree on what a payload means.
struct FlatJSONObject {
    enum Value: Equatable {
        case string(String)
        case number(Double)
        case bool(Bool)
        case null

        var string: String? {
            if case .string(let value) = self { return value }
            return nil
        }

        var number: Double? {
            if case .number(let value) = self { return value }
            return nil
        }
    }

    private var members: [(key: String, value: Value)] = []

    /// Nil for anything but a flat object of the values above.
    init?(_ text: String) {
        var text = text
        guard let parsed = text.withUTF8({ Self.parse($0) }) else { return nil }
        members = parsed
    }

    /// The member's value: nil when absent.
    subscript(key: String) -> Value? { members.first { $0.key == key }?.value }

    /// A member that must be a string: nil when absent or of another kind.
    func string(_ key: String) -> String? { self[key]?.string }

    /// An optional string member: `.some(nil)` when absent or null, nil when of another kind.
    func optionalString(_ key: String) -> String?? { optional(key, \.string) }

    /// A member that must be a number: nil when absent or of another kind.
    func number(_ key: String) -> Double? { self[key]?.number }

    /// An optional number member: `.some(nil)` when absent or null, nil when of another kind.
    func optionalNumber(_ key: String) -> Double?? { optional(key, \.number) }

    private func optional<T>(_ key: String, _ kind: (Value) -> T?) -> T?? {
        guard let value = self[key], value != .null else { return .some(nil) }
        return kind(value).map { .some($0) }
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> [(key: String, value: Value)]? {
        var index = 0
        func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }
        func consume(_ byte: UInt8) -> Bool {
            skipSpace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
        /// A string without escapes or control characters; nil otherwise (the fallback handles those).
        func string() -> String? {
            guard consume(UInt8(ascii: "\"")) else { return nil }
            let start = index
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    defer { index += 1 }
                    return String(validating: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                case UInt8(ascii: "\\"), 0..<0x20:
                    return nil
                default:
                    index += 1
                }
            }
            return nil
        }
        func literal(_ word: String) -> Bool {
            let utf8 = Array(word.utf8)
            guard index + utf8.count <= bytes.count, Array(bytes[index..<index + utf8.count]) == utf8 else { return false }
            index += utf8.count
            return true
        }
        func number() -> Double? {
            let start = index
            while index < bytes.count, Self.isNumberByte(bytes[index]) { index += 1 }
            guard index > start, Self.isJSONNumber(bytes[start..<index]) else { return nil }
            return Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)).flatMap {
                $0.isFinite ? $0 : nil
            }
        }
        func value() -> Value? {
            skipSpace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "\""): return string().map(Value.string)
            case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
            case UInt8(ascii: "n"): return literal("null") ? .null : nil
            default: return number().map(Value.number)
            }
        }

        guard consume(UInt8(ascii: "{")) else { return nil }
        var members: [(key: String, value: Value)] = []
        if !consume(UInt8(ascii: "}")) {
            repeat {
                skipSpace()
                guard let key = string(), consume(UInt8(ascii: ":")), let value = value() else { return nil }
                members.append((key, value))
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: "}")) else { return nil }
        }
        skipSpace()
        guard index == bytes.count, Set(members.map(\.key)).count == members.count else { return nil }
        return members
    }

    private static func isNumberByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
            UInt8(ascii: "e"), UInt8(ascii: "E"):
            return true
        default:
            return false
        }
    }

    /// JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? — stricter than `Double.init`,
    /// which also takes "inf", "0x1p3" or a leading "+".
    private static func isJSONNumber(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        var index = bytes.startIndex
        func digits() -> Int {
            let start = index
            while index < bytes.endIndex, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - start
        }
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.endIndex else { return false }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            return false
        }
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { return false }
        }
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.endIndex, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { return false }
        }
        return index == bytes.endIndex
    }
}

extension FaceImported {
    /// Read from a flat payload (`FlatJSONObject`); nil when the payload is not one of this shape.
    init?(flat object: FlatJSONObject) {
        guard let faceId = object.string("faceId"), let imageId = object.string("imageId"),
            let confidence = object.number("confidence"), let externalImageId = object.optionalString("externalImageId"),
            let keyId = object.optionalString("keyId")
        else { return nil }
        self.init(faceId: faceId, externalImageId: externalImageId, imageId: imageId, confidence: confidence, keyId: keyId)
    }
}

extension FaceAssociated {
    init?(flat object: FlatJSONObject) {
        guard let faceId = object.string("faceId"), let userId = object.string("userId"),
            let confidence = object.optionalNumber("confidence")
        else { return nil }
        self.init(faceId: faceId, userId: userId, confidence: confidence)
    }
}

extension FaceDisassociated {
    init?(flat object: FlatJSONObject) {
        guard let faceId = object.string("faceId"), let userId = object.string("userId") else { return nil }
        self.init(faceId: faceId, userId: userId)
    }
}

extension UserCreated {
    init?(flat object: FlatJSONObject) {
        guard let userId = object.string("userId") else { return nil }
        self.init(userId: userId)
    }
}
