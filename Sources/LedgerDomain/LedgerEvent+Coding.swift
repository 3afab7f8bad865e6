import Foundation

/// An event as the log stores it: type name, schema version, canonical JSON payload, embedding bytes.
public struct EncodedEvent: Sendable, Hashable {
    public var stream: String
    public var type: String
    public var schemaVersion: Int
    public var data: String
    public var embedding: [UInt8]?
}

/// An event's payload could not be read back.
public struct EventDecodingError: Error, CustomStringConvertible {
    public let type: String
    public let reason: String
    public var description: String { "cannot decode event \(type): \(reason)" }
}

/// The type names events are stored under: the codec's, and the only spelling SQL filters use
/// (`EventType.sql`), so a query cannot drift from what is written.
public enum EventType: String, CaseIterable, Sendable {
    case commandAccepted = "CommandAccepted"
    case commandSettled = "CommandSettled"
    case commandRejected = "CommandRejected"
    case commandReplayed = "CommandReplayed"
    case upstreamAttempted = "UpstreamAttempted"
    case commandAbandoned = "CommandAbandoned"
    case collectionCreated = "CollectionCreated"
    case collectionDeleted = "CollectionDeleted"
    case userCreated = "UserCreated"
    case userDeleted = "UserDeleted"
    case faceImported = "FaceImported"
    case faceAssociated = "FaceAssociated"
    case faceDisassociated = "FaceDisassociated"
    case faceAttempted = "FaceAttempted"
    case faceDeleted = "FaceDeleted"
    case faceForgotten = "FaceForgotten"

    /// The name as an SQL string literal (a constant of this enum, never input).
    public var sql: String { "'\(rawValue)'" }

    /// Names as a comma-separated list of SQL string literals, for `type IN (…)`.
    public static func sql(_ types: EventType...) -> String { types.map(\.sql).joined(separator: ", ") }
}

/// The streams events are kept in within a collection: the entity they are about.
public enum StreamName {
    public static let command = "command"
    public static let collection = "collection"
    public static let facePrefix = "face:"
    public static let userPrefix = "user:"
    public static func face(_ faceId: String) -> String { facePrefix + faceId }
    public static func user(_ userId: String) -> String { userPrefix + userId }
}

extension LedgerEvent {
    public func encoded() throws -> EncodedEvent {
        func make(_ type: EventType, _ payload: some Encodable, embedding: [UInt8]? = nil) throws -> EncodedEvent {
            EncodedEvent(
                stream: stream, type: type.rawValue, schemaVersion: Self.schemaVersion,
                data: try CanonicalJSON.string(payload), embedding: embedding)
        }
        func make(_ type: EventType, _ payload: JSONValue) -> EncodedEvent {
            EncodedEvent(stream: stream, type: type.rawValue, schemaVersion: Self.schemaVersion, data: payload.text, embedding: nil)
        }
        switch self {
        case .commandAccepted(let e): return make(.commandAccepted, e.payload)
        case .commandSettled(let e): return make(.commandSettled, e.payload)
        case .commandRejected(let e): return try make(.commandRejected, e)
        case .commandReplayed(let e): return try make(.commandReplayed, e)
        case .upstreamAttempted(let e): return try make(.upstreamAttempted, e)
        case .commandAbandoned(let e): return try make(.commandAbandoned, e)
        case .collectionCreated(let e): return try make(.collectionCreated, e)
        case .collectionDeleted(let e): return try make(.collectionDeleted, e)
        case .userCreated(let e): return try make(.userCreated, e)
        case .userDeleted(let e): return try make(.userDeleted, e)
        case .faceImported(let e, let embedding): return try make(.faceImported, e, embedding: EmbeddingBytes.pack(embedding))
        case .faceAssociated(let e): return make(.faceAssociated, try e.payload)
        case .faceDisassociated(let e): return try make(.faceDisassociated, e)
        case .faceAttempted(let e): return try make(.faceAttempted, e)
        case .faceDeleted(let e): return try make(.faceDeleted, e)
        case .faceForgotten(let e): return try make(.faceForgotten, e)
        }
    }

    /// Types whose events change no state (the command records and the audit-only attempts): folds
    /// skip them without decoding their payloads.
    public static let typesWithoutStateEffect: Set<String> = Set(
        [
            EventType.commandAccepted, .commandSettled, .commandRejected, .commandReplayed, .faceAttempted, .upstreamAttempted,
            .commandAbandoned,
        ].map(\.rawValue))

    /// The data key a `FaceImported` payload names, if any, without decoding the whole event (to
    /// open its embedding before the event is decoded).
    public static func keyId(inFaceImported data: String) -> String? {
        if let object = FlatJSONObject(data), let keyId = object.optionalString("keyId") { return keyId }
        struct KeyReference: Decodable { var keyId: String? }
        return try? JSONDecoder().decode(KeyReference.self, from: Data(data.utf8)).keyId
    }

    /// Reads an event back; older schema versions would be upcast here.
    public static func decode(type: String, schemaVersion: Int, data: String, embedding: [UInt8]?) throws -> LedgerEvent {
        func payload<T: Decodable>(_: T.Type) throws -> T {
            do {
                return try JSONDecoder().decode(T.self, from: Data(data.utf8))
            } catch {
                throw EventDecodingError(type: type, reason: "\(error)")
            }
        }
        /// The hot types' fast path (`FlatJSONObject`), else `JSONDecoder`.
        func payload<T: Decodable>(_ type: T.Type, flat: (FlatJSONObject) -> T?) throws -> T {
            if let object = FlatJSONObject(data), let value = flat(object) { return value }
            return try payload(type)
        }
        guard schemaVersion == Self.schemaVersion else {
            throw EventDecodingError(type: type, reason: "unknown schema version \(schemaVersion)")
        }
        switch EventType(rawValue: type) {
        case .commandAccepted?: return .commandAccepted(try payload(CommandAccepted.self))
        case .commandSettled?: return .commandSettled(try payload(CommandSettled.self))
        case .commandRejected?: return .commandRejected(try payload(CommandRejected.self))
        case .commandReplayed?: return .commandReplayed(try payload(CommandReplayed.self))
        case .upstreamAttempted?: return .upstreamAttempted(try payload(UpstreamAttempted.self))
        case .commandAbandoned?: return .commandAbandoned(try payload(CommandAbandoned.self))
        case .collectionCreated?: return .collectionCreated(try payload(CollectionCreated.self))
        case .collectionDeleted?: return .collectionDeleted(try payload(CollectionDeleted.self))
        case .userCreated?: return .userCreated(try payload(UserCreated.self, flat: UserCreated.init(flat:)))
        case .userDeleted?: return .userDeleted(try payload(UserDeleted.self))
        case .faceImported?:
            return .faceImported(try payload(FaceImported.self, flat: FaceImported.init(flat:)), embedding: EmbeddingBytes.unpack(embedding ?? []))
        case .faceAssociated?: return .faceAssociated(try payload(FaceAssociated.self, flat: FaceAssociated.init(flat:)))
        case .faceDisassociated?: return .faceDisassociated(try payload(FaceDisassociated.self, flat: FaceDisassociated.init(flat:)))
        case .faceAttempted?: return .faceAttempted(try payload(FaceAttempted.self))
        case .faceDeleted?: return .faceDeleted(try payload(FaceDeleted.self))
        case .faceForgotten?: return .faceForgotten(try payload(FaceForgotten.self))
        default: throw EventDecodingError(type: type, reason: "unknown event type")
        }
    }
}

// The payloads every command writes (its two records) and every association, built by hand: they
// are encoded on the command processor's one thread, where `JSONEncoder`'s generic machinery was 40%
// of a batch's time. Each holds the members `Codable` writes, nil ones left out, so the two read
// back alike (`JSONDecoder`, `FlatJSONObject`); tested against `JSONEncoder`.
extension CommandAccepted {
    var payload: JSONValue {
        var members: [String: JSONValue] = ["request": request]
        if let upstreamToken { members["upstreamToken"] = .string(upstreamToken) }
        return .object(members)
    }
}

extension CommandSettled {
    var payload: JSONValue { .object(["response": response, "requestHash": .string(requestHash)]) }
}

extension FaceAssociated {
    var payload: JSONValue {
        get throws {
            var members: [String: JSONValue] = ["faceId": .string(faceId), "userId": .string(userId)]
            if let confidence {
                // As `JSONEncoder` refuses it: JSON has no NaN or infinity.
                guard confidence.isFinite else {
                    throw EncodingError.invalidValue(confidence, .init(codingPath: [], debugDescription: "confidence is not finite"))
                }
                members["confidence"] = .number(confidence)
            }
            return .object(members)
        }
    }
}

/// Embeddings as stored: little-endian IEEE-754 single precision, 4 bytes a number (and, for a user's
/// vector sum, double precision, 8 bytes a number).
public enum EmbeddingBytes {
    public static func pack(_ embedding: [Float]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(embedding.count * 4)
        for value in embedding { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        return bytes
    }

    /// Float64 numbers (a user's vector sum), little-endian.
    public static func pack(_ values: [Double]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 8)
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        return bytes
    }

    public static func unpackDoubles(_ bytes: [UInt8]) -> [Double] {
        stride(from: 0, to: bytes.count - bytes.count % 8, by: 8).map { i in
            Double(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[i + $1]) << (8 * $1) })
        }
    }

    public static func unpack(_ bytes: [UInt8]) -> [Float] {
        stride(from: 0, to: bytes.count - bytes.count % 4, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }
}
