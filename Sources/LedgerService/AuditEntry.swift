import Foundation
import LedgerDomain
import Postgres

/// One entry of every audit query: one event of the log, saying who did what, to what, and when.
///
/// The JSON shape (`json`) is the same for the API operations, `faceledger audit --json/--jsonl`
/// and `audit tail`:
///
/// - when: `Position` (the event's position in the log), `Time` (epoch seconds, the database clock)
/// - who: `Principal`, `SourceAddress`?, `RequestId`, `ClientRequestToken`?
/// - what: `CollectionId`, `Operation`, `Type` (the event's type), `UserId`?, `FaceId`? (an entry about one face) or `FaceIds`?
///   (the faces a refused or replayed request named), `Outcome`, `Reasons`? and `Message`? (why a
///   request was refused), `OwnerUserId`? (the user holding a face another call asked for),
///   `Confidence`?, `ReplayOf`? (for a replay: the position of the answer it repeated), `Upstream`? (upstream mode:
///   one call to the upstream — `Attempt`, `Status`?, `ErrorCode`?, `DurationMs`, `Verdict`, `By`).
///   Upstream mode adds the outcomes `UPSTREAM_SETTLED`, `UPSTREAM_REJECTED`, `UPSTREAM_RETRY` (one call each)
///   and `ABANDONED` (the reconciler gave up; `Message` says why).
public struct AuditEntry: Sendable, Hashable {
    public var position: Int64
    public var time: Date
    public var collectionId: String
    public var operation: String
    public var principal: String
    public var sourceAddress: String?
    public var requestId: String
    public var clientRequestToken: String?
    public var type: String
    public var userId: String?
    public var faceId: String?
    public var faceIds: [String]?
    public var outcome: String
    public var reasons: [String]?
    public var message: String?
    public var ownerUserId: String?
    public var confidence: Double?
    public var replayOf: Int64?
    /// Upstream mode: one call to the upstream.
    public var upstream: UpstreamAttempted?

    /// Outcomes of the events that are not about one face (those keep `FaceOutcome`'s values).
    static let outcomes: [String: String] = [
        EventType.collectionCreated.rawValue: "COLLECTION_CREATED", EventType.collectionDeleted.rawValue: "COLLECTION_DELETED",
        EventType.userCreated.rawValue: "USER_CREATED", EventType.userDeleted.rawValue: "USER_DELETED",
        EventType.commandRejected.rawValue: "REJECTED", EventType.commandReplayed.rawValue: "REPLAYED",
        EventType.commandAbandoned.rawValue: "ABANDONED",
        EventType.faceImported.rawValue: FaceOutcome.imported.rawValue, EventType.faceAssociated.rawValue: FaceOutcome.associated.rawValue,
        EventType.faceDisassociated.rawValue: FaceOutcome.disassociated.rawValue, EventType.faceDeleted.rawValue: FaceOutcome.deleted.rawValue,
        EventType.faceForgotten.rawValue: FaceOutcome.forgotten.rawValue,
    ]

    /// An entry from an event's columns and payload. Payloads are read leniently, member by member,
    /// so that an event type added later (or an older payload) still makes an entry: its outcome is
    /// then its type.
    public init(
        position: Int64, time: Date, collectionId: String, operation: String, principal: String, sourceAddress: String?,
        requestId: String, clientRequestToken: String?, type: String, data: String
    ) {
        (self.position, self.time, self.collectionId, self.operation) = (position, time, collectionId, operation)
        (self.principal, self.sourceAddress, self.requestId, self.clientRequestToken) = (principal, sourceAddress, requestId, clientRequestToken)
        self.type = type
        let facts = (try? JSONDecoder().decode(Facts.self, from: Data(data.utf8))) ?? Facts()
        userId = facts.userId ?? facts.request?.UserId
        faceId = facts.faceId
        faceIds = facts.faceId == nil ? facts.request?.faceIds : nil
        outcome = facts.outcome ?? Self.outcomes[type] ?? type
        if let error = facts.error {
            reasons = [facts.upstreamCode ?? error.code]
            message = error.message
        }
        if type == EventType.upstreamAttempted.rawValue, let attempt = try? JSONDecoder().decode(UpstreamAttempted.self, from: Data(data.utf8)) {
            upstream = attempt
            outcome = "UPSTREAM_" + attempt.verdict
            reasons = attempt.errorCode.map { [$0] }
            message = attempt.reason
        }
        if type == EventType.commandAbandoned.rawValue || type == EventType.faceForgotten.rawValue { message = facts.reason }
        ownerUserId = facts.ownerUserId
        // A match confidence; FaceImported's `confidence` is the face detection's, not a match.
        confidence = type == EventType.faceImported.rawValue ? nil : facts.confidence
        replayOf = facts.replayOf
    }

    init(row: PostgresRow) throws {
        self.init(
            position: try row.decode(at: 0), time: try row.decode(at: 1), collectionId: try row.decode(at: 2),
            operation: try row.decode(at: 3), principal: try row.decode(at: 4), sourceAddress: try row.decode(at: 5),
            requestId: try row.decode(at: 6), clientRequestToken: try row.decode(at: 7), type: try row.decode(at: 8),
            data: try row.decode(at: 9))
    }

    /// The entry as the API and the command line write it; optional members are left out when absent.
    public var json: JSONValue {
        var json: [String: JSONValue] = [
            "Position": .integer(Int(position)),
            "Time": .number(time.timeIntervalSince1970),
            "CollectionId": .string(collectionId),
            "Operation": .string(operation),
            "Principal": .string(principal),
            "RequestId": .string(requestId),
            "Type": .string(type),
            "Outcome": .string(outcome),
        ]
        if let sourceAddress { json["SourceAddress"] = .string(sourceAddress) }
        if let clientRequestToken { json["ClientRequestToken"] = .string(clientRequestToken) }
        if let userId { json["UserId"] = .string(userId) }
        if let faceId { json["FaceId"] = .string(faceId) }
        if let faceIds { json["FaceIds"] = .array(faceIds.map(JSONValue.string)) }
        if let reasons { json["Reasons"] = .array(reasons.map(JSONValue.string)) }
        if let message { json["Message"] = .string(message) }
        if let ownerUserId { json["OwnerUserId"] = .string(ownerUserId) }
        if let confidence { json["Confidence"] = .number(confidence) }
        if let replayOf { json["ReplayOf"] = .integer(Int(replayOf)) }
        if let upstream {
            var call: [String: JSONValue] = [
                "Attempt": .integer(upstream.attempt), "DurationMs": .number(upstream.durationMs),
                "Verdict": .string(upstream.verdict), "By": .string(upstream.by),
            ]
            if let status = upstream.status { call["Status"] = .integer(status) }
            if let code = upstream.errorCode { call["ErrorCode"] = .string(code) }
            json["Upstream"] = .object(call)
        }
        return .object(json)
    }
}

/// The members of event payloads an audit entry shows; each is optional and read on its own.
private struct Facts: Decodable {
    struct Request: Decodable {
        var UserId: String?
        var FaceIds: [String]?
        /// ImportFaces records its faces (without embeddings) as objects.
        var Faces: [Face]?
        struct Face: Decodable { var FaceId: String? }

        var faceIds: [String]? {
            FaceIds ?? Faces.map { $0.compactMap(\.FaceId) }.flatMap { $0.isEmpty ? nil : $0 }
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            UserId = try? c.decodeIfPresent(String.self, forKey: .UserId)
            FaceIds = try? c.decodeIfPresent([String].self, forKey: .FaceIds)
            Faces = try? c.decodeIfPresent([Face].self, forKey: .Faces)
        }
        enum CodingKeys: String, CodingKey { case UserId, FaceIds, Faces }
    }
    struct Failure: Decodable {
        var code: String
        var message: String?
    }

    var faceId: String?
    var userId: String?
    var outcome: String?
    var ownerUserId: String?
    var confidence: Double?
    var request: Request?
    var error: Failure?
    var replayOf: Int64?
    var upstreamCode: String?
    var reason: String?

    init() {}

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        faceId = try? c.decodeIfPresent(String.self, forKey: .faceId)
        userId = try? c.decodeIfPresent(String.self, forKey: .userId)
        outcome = try? c.decodeIfPresent(String.self, forKey: .outcome)
        ownerUserId = try? c.decodeIfPresent(String.self, forKey: .ownerUserId)
        confidence = try? c.decodeIfPresent(Double.self, forKey: .confidence)
        request = try? c.decodeIfPresent(Request.self, forKey: .request)
        error = try? c.decodeIfPresent(Failure.self, forKey: .error)
        replayOf = try? c.decodeIfPresent(Int64.self, forKey: .replayOf)
        upstreamCode = try? c.decodeIfPresent(String.self, forKey: .upstreamCode)
        reason = try? c.decodeIfPresent(String.self, forKey: .reason)
    }
    enum CodingKeys: String, CodingKey {
        case faceId, userId, outcome, ownerUserId, confidence, request, error, replayOf, upstreamCode, reason
    }
}
