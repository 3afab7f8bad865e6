import Foundation

/// What a face attempt came to, as the audit reports it.
public enum FaceOutcome: String, Sendable, Hashable, Codable {
    case imported = "IMPORTED"
    case associated = "ASSOCIATED"
    case disassociated = "DISASSOCIATED"
    case faceNotFound = "FACE_NOT_FOUND"
    case associatedToADifferentUser = "ASSOCIATED_TO_A_DIFFERENT_USER"
    case lowMatchConfidence = "LOW_MATCH_CONFIDENCE"
    case userFaceLimit = "USER_FACE_LIMIT"
    case deleted = "DELETED"
    case forgotten = "FORGOTTEN"
    case unchanged = "UNCHANGED"
}

/// The facts the ledger records, in the past tense. Each is stored as one row of the event log:
/// its `type`, its payload as canonical JSON, and (for faces) the embedding apart from the payload.
public enum LedgerEvent: Sendable, Hashable {
    /// A command was accepted; every event it causes follows in the same append.
    case commandAccepted(CommandAccepted)
    /// A command finished; its response is what an idempotent retry gets back.
    case commandSettled(CommandSettled)
    /// A command failed with a client error and changed nothing.
    case commandRejected(CommandRejected)
    /// A retry with a bound ClientRequestToken got the stored response: recorded for the audit (who
    /// retried, when, with which request), changing nothing.
    case commandReplayed(CommandReplayed)
    /// Upstream mode: one call to the upstream for an accepted command, and what it came to.
    case upstreamAttempted(UpstreamAttempted)
    /// Upstream mode: the reconciler gave up on a command it could not settle in time; its outcome
    /// upstream is unknown.
    case commandAbandoned(CommandAbandoned)
    case collectionCreated(CollectionCreated)
    case collectionDeleted(CollectionDeleted)
    case userCreated(UserCreated)
    case userDeleted(UserDeleted)
    /// A face entered the collection. Its embedding travels beside the payload.
    case faceImported(FaceImported, embedding: [Float])
    case faceAssociated(FaceAssociated)
    case faceDisassociated(FaceDisassociated)
    /// An attempt on a face that changed nothing (refused, or already so), kept for the audit.
    case faceAttempted(FaceAttempted)
    case faceDeleted(FaceDeleted)
    /// A face's biometrics were destroyed (its data keys): its embedding can no longer be read from
    /// the log by anybody; its history stays.
    case faceForgotten(FaceForgotten)
}

public struct CommandAccepted: Sendable, Hashable, Codable {
    public var request: JSONValue
    /// Upstream mode: the ClientRequestToken every call to the upstream carries (the client's, or one
    /// generated when it sent none). Absent in the embedded engine, which settles in the same append.
    public var upstreamToken: String?

    public init(request: JSONValue, upstreamToken: String? = nil) {
        self.request = request
        self.upstreamToken = upstreamToken
    }
}

public struct CommandSettled: Sendable, Hashable, Codable {
    public var response: JSONValue
    /// SHA-256 of the canonical request, hex: what an idempotent retry is compared with.
    public var requestHash: String

    public init(response: JSONValue, requestHash: String) {
        self.response = response
        self.requestHash = requestHash
    }
}

public struct CommandRejected: Sendable, Hashable, Codable {
    public var request: JSONValue
    public var error: RecordedError
    /// Upstream mode: the error code the upstream answered with, when `error.code` cannot name it.
    public var upstreamCode: String?

    public init(request: JSONValue, error: RecordedError, upstreamCode: String? = nil) {
        self.request = request
        self.error = error
        self.upstreamCode = upstreamCode
    }
}

/// The error a client was answered with, as it was sent: its code (an AWS exception name) and message.
public struct RecordedError: Sendable, Hashable, Codable {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

public struct UpstreamAttempted: Sendable, Hashable, Codable {
    /// 1 for the first call, counting every call made for the command.
    public var attempt: Int
    /// The HTTP status the upstream answered with; nil when it did not answer.
    public var status: Int?
    public var errorCode: String?
    /// How long the call took, in milliseconds.
    public var durationMs: Double
    /// What the ledger made of it: `SETTLED`, `REJECTED`, or `RETRY` (outcome unknown or the failure passes).
    public var verdict: String
    /// Why it is retried: the failure, in a line.
    public var reason: String?
    /// `request` for the client's own request, `reconciler` for a replay, `probe` for a look at the
    /// upstream's state that resolves an unknown outcome.
    public var by: String

    public init(attempt: Int, status: Int?, errorCode: String?, durationMs: Double, verdict: String, reason: String?, by: String) {
        self.attempt = attempt
        self.status = status
        self.errorCode = errorCode
        self.durationMs = durationMs
        self.verdict = verdict
        self.reason = reason
        self.by = by
    }
}

public struct CommandAbandoned: Sendable, Hashable, Codable {
    public var attempts: Int
    public var reason: String

    public init(attempts: Int, reason: String) {
        self.attempts = attempts
        self.reason = reason
    }
}

public struct CommandReplayed: Sendable, Hashable, Codable {
    public var request: JSONValue
    public var requestHash: String
    /// The position of the CommandSettled event whose response the retry got; nil when the original
    /// is in the same batch (its position is not known yet).
    public var replayOf: Int64?

    public init(request: JSONValue, requestHash: String, replayOf: Int64?) {
        self.request = request
        self.requestHash = requestHash
        self.replayOf = replayOf
    }
}

public struct CollectionCreated: Sendable, Hashable, Codable {
    public var collectionId: String
    public var arn: String
    /// The collection's tags; absent when it has none, so events written before tags were kept (which
    /// lack the member) read back unchanged, in the same schema version.
    public var tags: [String: String]?

    public init(collectionId: String, arn: String, tags: [String: String] = [:]) {
        self.collectionId = collectionId
        self.arn = arn
        self.tags = tags.isEmpty ? nil : tags
    }
}

public struct CollectionDeleted: Sendable, Hashable, Codable {
    public var collectionId: String

    public init(collectionId: String) {
        self.collectionId = collectionId
    }
}

public struct UserCreated: Sendable, Hashable, Codable {
    public var userId: String

    public init(userId: String) {
        self.userId = userId
    }
}

public struct UserDeleted: Sendable, Hashable, Codable {
    public var userId: String

    public init(userId: String) {
        self.userId = userId
    }
}

public struct FaceImported: Sendable, Hashable, Codable {
    public var faceId: String
    public var externalImageId: String?
    public var imageId: String
    public var confidence: Double
    /// The data key the embedding beside the payload is encrypted under; nil for an embedding stored
    /// in clear (written before encryption) or none.
    public var keyId: String?

    public init(faceId: String, externalImageId: String? = nil, imageId: String, confidence: Double, keyId: String? = nil) {
        self.faceId = faceId
        self.externalImageId = externalImageId
        self.imageId = imageId
        self.confidence = confidence
        self.keyId = keyId
    }
}

public struct FaceForgotten: Sendable, Hashable, Codable {
    public var faceId: String
    /// Why, as the operator said (a data subject's request, a retention rule, …).
    public var reason: String?

    public init(faceId: String, reason: String? = nil) {
        self.faceId = faceId
        self.reason = reason
    }
}

public struct FaceAssociated: Sendable, Hashable, Codable {
    public var faceId: String
    public var userId: String
    /// The match confidence, when the user had faces to match against.
    public var confidence: Double?

    public init(faceId: String, userId: String, confidence: Double? = nil) {
        self.faceId = faceId
        self.userId = userId
        self.confidence = confidence
    }
}

public struct FaceDisassociated: Sendable, Hashable, Codable {
    public var faceId: String
    public var userId: String

    public init(faceId: String, userId: String) {
        self.faceId = faceId
        self.userId = userId
    }
}

public struct FaceAttempted: Sendable, Hashable, Codable {
    public var faceId: String
    /// The user the operation named (none for DeleteFaces).
    public var userId: String?
    public var outcome: FaceOutcome
    /// The face's owner, when it is another user's.
    public var ownerUserId: String?
    public var confidence: Double?

    public init(faceId: String, userId: String? = nil, outcome: FaceOutcome, ownerUserId: String? = nil, confidence: Double? = nil) {
        self.faceId = faceId
        self.userId = userId
        self.outcome = outcome
        self.ownerUserId = ownerUserId
        self.confidence = confidence
    }
}

public struct FaceDeleted: Sendable, Hashable, Codable {
    public var faceId: String

    public init(faceId: String) {
        self.faceId = faceId
    }
}

extension LedgerEvent {
    /// The stream of the event within its collection: the entity it is about.
    public var stream: String {
        switch self {
        case .commandAccepted, .commandSettled, .commandRejected, .commandReplayed, .upstreamAttempted, .commandAbandoned:
            StreamName.command
        case .collectionCreated, .collectionDeleted: StreamName.collection
        case .userCreated(let e): StreamName.user(e.userId)
        case .userDeleted(let e): StreamName.user(e.userId)
        case .faceImported(let e, _): StreamName.face(e.faceId)
        case .faceAssociated(let e): StreamName.face(e.faceId)
        case .faceDisassociated(let e): StreamName.face(e.faceId)
        case .faceAttempted(let e): StreamName.face(e.faceId)
        case .faceDeleted(let e): StreamName.face(e.faceId)
        case .faceForgotten(let e): StreamName.face(e.faceId)
        }
    }

    /// The current schema version of every event type; bump it (and upcast in `decode`) on change.
    public static let schemaVersion = 1
}
