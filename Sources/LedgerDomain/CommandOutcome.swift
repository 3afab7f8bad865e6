/// What a command came to when it succeeded, in the domain's words. `decide` concludes it for the
/// embedded engine; in upstream mode it is read from the upstream's answer, and `mirror` records it.
/// How a client sees it (member names, reasons as strings) is the wire's business, not the domain's.
public enum CommandOutcome: Sendable, Hashable {
    case collectionCreated(arn: String)
    case collectionDeleted
    case userCreated
    case userDeleted
    /// The faces associated and refused, and the user's status after the command.
    case facesAssociated(FaceChanges, userStatus: UserStatus)
    case facesDisassociated(FaceChanges, userStatus: UserStatus)
    case facesDeleted(FaceChanges)
    case facesForgotten(FaceChanges)
    /// The faces that entered the collection (ImportFaces, or an upstream's IndexFaces).
    case facesImported([FaceImported])
}

extension CommandOutcome {
    /// The faces changed and refused, for the outcomes that have them (empty for the others).
    var faceChanges: FaceChanges {
        switch self {
        case .facesAssociated(let changes, _), .facesDisassociated(let changes, _), .facesDeleted(let changes),
            .facesForgotten(let changes):
            changes
        default:
            FaceChanges()
        }
    }

    var importedFaces: [FaceImported] {
        if case .facesImported(let faces) = self { faces } else { [] }
    }

    /// Every face the outcome names: changed, refused or imported.
    public var faceIds: [String] {
        faceChanges.changed + faceChanges.refused.map(\.faceId) + importedFaces.map(\.faceId)
    }
}

/// The faces a command changed, and those it did not with why.
public struct FaceChanges: Sendable, Hashable {
    public var changed: [String]
    public var refused: [RefusedFace]

    public init(changed: [String] = [], refused: [RefusedFace] = []) {
        self.changed = changed
        self.refused = refused
    }
}

/// A face a command could not change, and why.
public struct RefusedFace: Sendable, Hashable {
    public var faceId: String
    public var reason: FaceOutcome
    /// The user the face belongs to, when that is the reason.
    public var ownerUserId: String?
    /// The match confidence, when a low one is the reason.
    public var confidence: Double?

    public init(faceId: String, reason: FaceOutcome, ownerUserId: String? = nil, confidence: Double? = nil) {
        self.faceId = faceId
        self.reason = reason
        self.ownerUserId = ownerUserId
        self.confidence = confidence
    }
}
