import Foundation
import LedgerDomain
import LedgerService

/// A request of an audit operation (`Operation.isAudit`): a subject, and the page members every audit
/// operation shares: `MaxResults` (1–1000, default 100), `NextToken`, and `From`/`To` (epoch seconds:
/// entries recorded at or after `From` and before `To`).
protocol AuditRequest: OperationRequest {
    var MaxResults: Int? { get }
    var NextToken: String? { get }
    var From: Double? { get }
    var To: Double? { get }
    /// What the entries are about; valid once `validate()` passed.
    var subject: AuditSubject { get }
    /// The checks of the members that name the subject; the page members' follow (`members`).
    static var subjectMembers: [MemberRule<Self>] { get }
}

extension AuditRequest {
    static var members: [MemberRule<Self>] { subjectMembers + [.custom { request, v in request.checkPage(&v) }] }

    /// The latest instant accepted (9999-12-31T23:59:59Z): later ones are a typo, and would not fit
    /// PostgreSQL's timestamps.
    static var latestInstant: Double { 253_402_300_799 }

    func checkPage(_ v: inout Validator) {
        v.checkRange(MaxResults, "maxResults", 1...1000)
        v.check(NextToken, "nextToken", Validator.paginationToken)
        for (value, member) in [(From, "from"), (To, "to")] {
            if let value, !(value.isFinite && (0...Self.latestInstant).contains(value)) {
                v.fail(
                    "Value '\(value)' at '\(member)' failed to satisfy constraint: Member must be epoch seconds between 0 and \(Int(Self.latestInstant))"
                )
            }
        }
        if let From, let To, From > To {
            v.fail("From (\(From)) must not be later than To (\(To))")
        }
    }

    var window: (from: Date?, to: Date?) {
        (From.map(Date.init(timeIntervalSince1970:)), To.map(Date.init(timeIntervalSince1970:)))
    }
}

extension AuditSubject {
    /// What a pagination token is bound to besides the operation: a token of one subject is no
    /// passport to another's entries. (NUL cannot occur in a request's strings.)
    var tokenScope: String {
        switch self {
        case .face(let collectionId, let faceId): collectionId + "/" + faceId
        case .user(let collectionId, let userId): collectionId + "/" + userId
        case .principal(let principal, let collectionId): principal + "\u{0}" + (collectionId ?? "")
        case .collection(let collectionId): collectionId
        case .request(let requestId): requestId
        case .everything: ""
        }
    }
}

extension Validator {
    /// Principals are the names in the credentials file; request ids are the ids the server gave.
    static let principal = StringRule(min: 1, max: 256, allowed: nil, pattern: nil)
    static let requestId = StringRule(min: 1, max: 256, allowed: nil, pattern: nil)
}

/// FaceLedger.GetFaceHistory: every attempt that touched a face, oldest first.
struct GetFaceHistoryRequest: AuditRequest {
    var CollectionId: String?
    var FaceId: String?
    var MaxResults: Int?
    var NextToken: String?
    var From: Double?
    var To: Double?

    static var subjectMembers: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .faceId(\.FaceId, "faceId", required: true),
        ]
    }

    var subject: AuditSubject { .face(collectionId: CollectionId!, faceId: FaceId!) }
}

/// FaceLedger.GetUserHistory: what was done to or for a user (its creation and deletion, every face
/// attempt that named it, every refused request that named it).
struct GetUserHistoryRequest: AuditRequest {
    var CollectionId: String?
    var UserId: String?
    var MaxResults: Int?
    var NextToken: String?
    var From: Double?
    var To: Double?

    static var subjectMembers: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true),
            .string(\.UserId, "userId", Validator.userId, required: true),
        ]
    }

    var subject: AuditSubject { .user(collectionId: CollectionId!, userId: UserId!) }
}

/// FaceLedger.GetPrincipalHistory: what one principal did, everywhere or in one collection.
struct GetPrincipalHistoryRequest: AuditRequest {
    var Principal: String?
    var CollectionId: String?
    var MaxResults: Int?
    var NextToken: String?
    var From: Double?
    var To: Double?

    static var subjectMembers: [MemberRule<Self>] {
        [
            .string(\.Principal, "principal", Validator.principal, required: true),
            .string(\.CollectionId, "collectionId", Validator.collectionId),
        ]
    }

    var subject: AuditSubject { .principal(Principal!, collectionId: CollectionId) }
}

/// FaceLedger.GetCollectionHistory: everything recorded in a collection.
struct GetCollectionHistoryRequest: AuditRequest {
    var CollectionId: String?
    var MaxResults: Int?
    var NextToken: String?
    var From: Double?
    var To: Double?

    static var subjectMembers: [MemberRule<Self>] {
        [
            .string(\.CollectionId, "collectionId", Validator.collectionId, required: true)
        ]
    }

    var subject: AuditSubject { .collection(CollectionId!) }
}

/// FaceLedger.GetRequestHistory: everything one request (an `x-amzn-RequestId`) caused.
struct GetRequestHistoryRequest: AuditRequest {
    var RequestId: String?
    var MaxResults: Int?
    var NextToken: String?
    var From: Double?
    var To: Double?

    static var subjectMembers: [MemberRule<Self>] {
        [
            .string(\.RequestId, "requestId", Validator.requestId, required: true)
        ]
    }

    var subject: AuditSubject { .request(RequestId!) }
}
