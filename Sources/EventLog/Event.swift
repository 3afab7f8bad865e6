import Foundation

/// Who caused an event, how, and from where. Recorded with every event.
public struct EventMetadata: Sendable, Hashable {
    /// The name of the key that signed the request (or the operator, for CLI commands).
    public var principal: String
    public var requestId: String
    public var clientToken: String?
    /// The API operation or CLI command, e.g. `AssociateFaces`.
    public var operation: String
    public var sourceAddress: String?
    /// The command this event belongs to: every event a command causes carries its id.
    public var commandId: UUID?

    public init(
        principal: String, requestId: String, clientToken: String? = nil, operation: String,
        sourceAddress: String? = nil, commandId: UUID? = nil
    ) {
        self.principal = principal
        self.requestId = requestId
        self.clientToken = clientToken
        self.operation = operation
        self.sourceAddress = sourceAddress
        self.commandId = commandId
    }
}

/// An event to append: a fact in the past tense, with a schema version so it can be upcast later.
public struct NewEvent: Sendable, Hashable {
    public var stream: String
    public var type: String
    public var schemaVersion: Int
    /// The event's facts as a JSON object (no biometric data).
    public var data: String
    /// Biometric data, kept opaque and apart from `data` so it can be encrypted and shredded.
    public var embedding: [UInt8]?
    public var metadata: EventMetadata

    public init(
        stream: String, type: String, schemaVersion: Int = 1, data: String, embedding: [UInt8]? = nil,
        metadata: EventMetadata
    ) {
        self.stream = stream
        self.type = type
        self.schemaVersion = schemaVersion
        self.data = data
        self.embedding = embedding
        self.metadata = metadata
    }
}

/// An event as the log holds it.
public struct RecordedEvent: Sendable, Hashable {
    /// The global position: strictly increasing in commit order.
    public var position: Int64
    public var collectionId: String
    public var stream: String
    /// 1 for a stream's first event, then +1 per event.
    public var version: Int
    public var type: String
    public var schemaVersion: Int
    /// The JSON object, as PostgreSQL's `jsonb` renders it.
    public var data: String
    public var embedding: [UInt8]?
    public var metadata: EventMetadata
    /// The database's clock at append, never earlier than the previous event's.
    public var recordedAt: Date
    /// SHA-256 over the previous event's hash and every column of this one: the hash chain that
    /// `faceledger verify` walks (see `HashChain`).
    public var hash: [UInt8]
}

/// What a fold reads of an event: its place in the log, its type and payload, and when it was
/// recorded. `RecordedEvent` is one; `FoldEvent` is only that, so that folding the whole log reads
/// less than half of each row.
public protocol FoldableEvent: Sendable {
    var position: Int64 { get }
    var collectionId: String { get }
    var type: String { get }
    var schemaVersion: Int { get }
    var data: String { get }
    /// Opened (decrypted) in place by whoever holds the keys.
    var embedding: [UInt8]? { get set }
    var recordedAt: Date { get }
}

extension RecordedEvent: FoldableEvent {}

/// An event as folds read it (`EventLog.readForFold`): no stream, version, metadata or hash.
public struct FoldEvent: FoldableEvent, Hashable {
    public var position: Int64
    public var collectionId: String
    public var type: String
    public var schemaVersion: Int
    public var data: String
    public var embedding: [UInt8]?
    public var recordedAt: Date
}
