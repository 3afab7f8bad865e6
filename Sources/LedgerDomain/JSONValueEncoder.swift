import Foundation

/// An `Encoder` that builds a `JSONValue` straight from a value: a `Double` member becomes a `number`
/// and an `Int` member an `integer`, a distinction JSON text written by `JSONEncoder` drops (it
/// writes `100.0` as `100`). Only the single-value container converts values; the keyed and unkeyed
/// containers hand every member to a child encoder, so each type encodes itself as it would anywhere.
struct JSONValueEncoder: Encoder {
    let codingPath: [any CodingKey]
    let slot: Slot
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    static func encode(_ value: some Encodable) throws -> JSONValue {
        let slot = Slot()
        try value.encode(to: JSONValueEncoder(codingPath: [], slot: slot))
        return slot.resolved()
    }

    /// Where one value goes; containers fill theirs in place, so it is a reference.
    final class Slot {
        var value: JSONValue = .null
        var members: [String: Slot]?
        var elements: [Slot]?

        func resolved() -> JSONValue {
            if let members { return .object(members.mapValues { $0.resolved() }) }
            if let elements { return .array(elements.map { $0.resolved() }) }
            return value
        }
    }

    func container<Key: CodingKey>(keyedBy _: Key.Type) -> KeyedEncodingContainer<Key> {
        if slot.members == nil { slot.members = [:] }
        return KeyedEncodingContainer(Keyed<Key>(codingPath: codingPath, slot: slot))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if slot.elements == nil { slot.elements = [] }
        return Unkeyed(codingPath: codingPath, slot: slot)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { Single(codingPath: codingPath, slot: slot) }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let codingPath: [any CodingKey]
        let slot: Slot

        private func child(_ key: Key) -> JSONValueEncoder {
            let child = Slot()
            slot.members![key.stringValue] = child
            return JSONValueEncoder(codingPath: codingPath + [key], slot: child)
        }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encodeNil(forKey key: Key) throws { child(key).slot.value = .null }
        mutating func encode(_ value: Bool, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: String, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: Double, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: Float, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: Int, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { try value.encode(to: child(key)) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { try value.encode(to: child(key)) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            child(key).container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { child(key).unkeyedContainer() }
        mutating func superEncoder() -> any Encoder { child(Key(stringValue: "super")!) }
        mutating func superEncoder(forKey key: Key) -> any Encoder { child(key) }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let codingPath: [any CodingKey]
        let slot: Slot
        var count: Int { slot.elements!.count }

        private struct Index: CodingKey {
            var intValue: Int?
            var stringValue: String { String(intValue!) }
            init(intValue: Int) { self.intValue = intValue }
            init?(stringValue: String) { nil }
        }

        private func next() -> JSONValueEncoder {
            let child = Slot()
            let index = Index(intValue: slot.elements!.count)
            slot.elements!.append(child)
            return JSONValueEncoder(codingPath: codingPath + [index], slot: child)
        }

        mutating func encode<T: Encodable>(_ value: T) throws { try value.encode(to: next()) }
        mutating func encodeNil() throws { next().slot.value = .null }
        mutating func encode(_ value: Bool) throws { try value.encode(to: next()) }
        mutating func encode(_ value: String) throws { try value.encode(to: next()) }
        mutating func encode(_ value: Double) throws { try value.encode(to: next()) }
        mutating func encode(_ value: Float) throws { try value.encode(to: next()) }
        mutating func encode(_ value: Int) throws { try value.encode(to: next()) }
        mutating func encode(_ value: Int8) throws { try value.encode(to: next()) }
        mutating func encode(_ value: Int16) throws { try value.encode(to: next()) }
        mutating func encode(_ value: Int32) throws { try value.encode(to: next()) }
        mutating func encode(_ value: Int64) throws { try value.encode(to: next()) }
        mutating func encode(_ value: UInt) throws { try value.encode(to: next()) }
        mutating func encode(_ value: UInt8) throws { try value.encode(to: next()) }
        mutating func encode(_ value: UInt16) throws { try value.encode(to: next()) }
        mutating func encode(_ value: UInt32) throws { try value.encode(to: next()) }
        mutating func encode(_ value: UInt64) throws { try value.encode(to: next()) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            next().container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { next().unkeyedContainer() }
        mutating func superEncoder() -> any Encoder { next() }
    }

    /// The one place values become JSON: integers stay integers, floating-point numbers stay floats.
    struct Single: SingleValueEncodingContainer {
        let codingPath: [any CodingKey]
        let slot: Slot

        private func set(_ value: JSONValue) { slot.value = value }

        private func float(_ value: Double) throws {
            guard value.isFinite else {
                throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "JSON has no \(value)"))
            }
            set(.number(value))
        }

        private func integer(_ value: some BinaryInteger) { set(Int(exactly: value).map(JSONValue.integer) ?? .number(Double(value))) }

        mutating func encodeNil() throws { set(.null) }
        mutating func encode(_ value: Bool) throws { set(.bool(value)) }
        mutating func encode(_ value: String) throws { set(.string(value)) }
        mutating func encode(_ value: Double) throws { try float(value) }
        // A Float by its own shortest text (0.1, not 0.10000000149011612), as JSONEncoder writes it.
        mutating func encode(_ value: Float) throws { try float(value.isFinite ? Double(value.description)! : Double(value)) }
        mutating func encode(_ value: Int) throws { integer(value) }
        mutating func encode(_ value: Int8) throws { integer(value) }
        mutating func encode(_ value: Int16) throws { integer(value) }
        mutating func encode(_ value: Int32) throws { integer(value) }
        mutating func encode(_ value: Int64) throws { integer(value) }
        mutating func encode(_ value: UInt) throws { integer(value) }
        mutating func encode(_ value: UInt8) throws { integer(value) }
        mutating func encode(_ value: UInt16) throws { integer(value) }
        mutating func encode(_ value: UInt32) throws { integer(value) }
        mutating func encode(_ value: UInt64) throws { integer(value) }
        mutating func encode<T: Encodable>(_ value: T) throws { try value.encode(to: JSONValueEncoder(codingPath: codingPath, slot: slot)) }
    }
}
