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

extension LedgerEvent {
    public func encoded() throws -> EncodedEvent {
        func make(_ type: String, _ payload: some Encodable, embedding: [UInt8]? = nil) throws -> EncodedEvent {
            EncodedEvent(stream: stream, type: type, schemaVersion: Self.schemaVersion,
                         data: try CanonicalJSON.string(payload), embedding: embedding)
        }
        switch self {
        case .commandAccepted(let e): return try make("CommandAccepted", e)
        case .commandSettled(let e): return try make("CommandSettled", e)
        case .commandRejected(let e): return try make("CommandRejected", e)
        case .commandReplayed(let e): return try make("CommandReplayed", e)
        case .upstreamAttempted(let e): return try make("UpstreamAttempted", e)
        case .commandAbandoned(let e): return try make("CommandAbandoned", e)
        case .collectionCreated(let e): return try make("CollectionCreated", e)
        case .collectionDeleted(let e): return try make("CollectionDeleted", e)
        case .userCreated(let e): return try make("UserCreated", e)
        case .userDeleted(let e): return try make("UserDeleted", e)
        case .faceImported(let e, let embedding): return try make("FaceImported", e, embedding: EmbeddingBytes.pack(embedding))
        case .faceAssociated(let e): return try make("FaceAssociated", e)
        case .faceDisassociated(let e): return try make("FaceDisassociated", e)
        case .faceAttempted(let e): return try make("FaceAttempted", e)
        case .faceDeleted(let e): return try make("FaceDeleted", e)
        case .faceForgotten(let e): return try make("FaceForgotten", e)
        }
    }

    /// Types whose events change no state (the command records and the audit-only attempts): folds
    /// skip them without decoding their payloads.
    public static let typesWithoutStateEffect: Set<String> = [
        "CommandAccepted", "CommandSettled", "CommandRejected", "CommandReplayed", "FaceAttempted", "UpstreamAttempted",
        "CommandAbandoned",
    ]

    /// Reads an event back; older schema versions would be upcast here.
    public static func decode(type: String, schemaVersion: Int, data: String, embedding: [UInt8]?) throws -> LedgerEvent {
        func payload<T: Decodable>(_: T.Type) throws -> T {
            do {
                return try JSONDecoder().decode(T.self, from: Data(data.utf8))
            } catch {
                throw EventDecodingError(type: type, reason: "\(error)")
            }
        }
        guard schemaVersion == Self.schemaVersion else {
            throw EventDecodingError(type: type, reason: "unknown schema version \(schemaVersion)")
        }
        switch type {
        case "CommandAccepted": return .commandAccepted(try payload(CommandAccepted.self))
        case "CommandSettled": return .commandSettled(try payload(CommandSettled.self))
        case "CommandRejected": return .commandRejected(try payload(CommandRejected.self))
        case "CommandReplayed": return .commandReplayed(try payload(CommandReplayed.self))
        case "UpstreamAttempted": return .upstreamAttempted(try payload(UpstreamAttempted.self))
        case "CommandAbandoned": return .commandAbandoned(try payload(CommandAbandoned.self))
        case "CollectionCreated": return .collectionCreated(try payload(CollectionCreated.self))
        case "CollectionDeleted": return .collectionDeleted(try payload(CollectionDeleted.self))
        case "UserCreated": return .userCreated(try payload(UserCreated.self))
        case "UserDeleted": return .userDeleted(try payload(UserDeleted.self))
        case "FaceImported":
            return .faceImported(try payload(FaceImported.self), embedding: EmbeddingBytes.unpack(embedding ?? []))
        case "FaceAssociated": return .faceAssociated(try payload(FaceAssociated.self))
        case "FaceDisassociated": return .faceDisassociated(try payload(FaceDisassociated.self))
        case "FaceAttempted": return .faceAttempted(try payload(FaceAttempted.self))
        case "FaceDeleted": return .faceDeleted(try payload(FaceDeleted.self))
        case "FaceForgotten": return .faceForgotten(try payload(FaceForgotten.self))
        default: throw EventDecodingError(type: type, reason: "unknown event type")
        }
    }
}

/// Embeddings as stored: little-endian IEEE-754 single precision, 4 bytes a number.
public enum EmbeddingBytes {
    public static func pack(_ embedding: [Float]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(embedding.count * 4)
        for value in embedding { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        return bytes
    }

    public static func unpack(_ bytes: [UInt8]) -> [Float] {
        stride(from: 0, to: bytes.count - bytes.count % 4, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }
}
