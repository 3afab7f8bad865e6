import LedgerDomain

extension JSONValue {
    /// The response a client gets for `outcome`, in the Rekognition model's shapes: the one rendering
    /// of what a command came to (the log records it, and an idempotent retry gets it back).
    public init(rendering outcome: CommandOutcome) throws {
        switch outcome {
        case .collectionCreated(let arn):
            try self.init(encoding: CreateCollectionResponse(StatusCode: 200, CollectionArn: arn, FaceModelVersion: faceModelVersion))
        case .collectionDeleted:
            try self.init(encoding: StatusCodeResponse(StatusCode: 200))
        case .userCreated, .userDeleted:
            try self.init(encoding: EmptyResponse())
        case .facesAssociated(let changes, let status):
            try self.init(
                encoding: AssociateFacesResponse(
                    AssociatedFaces: changes.changed.map(FaceIdEntry.init), UnsuccessfulFaceAssociations: changes.unsuccessful(),
                    UserStatus: status))
        case .facesDisassociated(let changes, let status):
            try self.init(
                encoding: DisassociateFacesResponse(
                    DisassociatedFaces: changes.changed.map(FaceIdEntry.init), UnsuccessfulFaceDisassociations: changes.unsuccessful(),
                    UserStatus: status))
        case .facesDeleted(let changes):
            try self.init(
                encoding: DeleteFacesResponse(
                    DeletedFaces: changes.changed, UnsuccessfulFaceDeletions: changes.unsuccessful(ownedBy: "ASSOCIATED_TO_AN_EXISTING_USER")))
        case .facesForgotten(let changes):
            try self.init(encoding: ForgetFacesResponse(ForgottenFaces: changes.changed, UnsuccessfulFaceForgets: changes.unsuccessful()))
        case .facesImported(let faces):
            try self.init(
                encoding: ImportFacesResponse(
                    FaceRecords: faces.map { face in
                        ImportedFaceRecord(
                            Face: .init(
                                FaceId: face.faceId, ExternalImageId: face.externalImageId,
                                ImageId: face.imageId, Confidence: face.confidence))
                    }))
        }
    }
}

extension FaceChanges {
    /// The refused faces as Rekognition lists them. `ownedBy` is the reason for a face that belongs
    /// to a user: DeleteFaces names it differently from the association operations.
    func unsuccessful(ownedBy: String = "ASSOCIATED_TO_A_DIFFERENT_USER") -> [UnsuccessfulFace] {
        refused.map { face in
            UnsuccessfulFace(
                FaceId: face.faceId, UserId: face.ownerUserId, Confidence: face.confidence,
                Reasons: face.reason.wireReasons(ownedBy: ownedBy))
        }
    }
}

extension FaceOutcome {
    /// The `Reasons` Rekognition gives for a face refused so. A face past the user's limit gets none,
    /// as Rekognition answers it.
    func wireReasons(ownedBy: String) -> [String] {
        switch self {
        case .faceNotFound: ["FACE_NOT_FOUND"]
        case .associatedToADifferentUser: [ownedBy]
        case .lowMatchConfidence: ["LOW_MATCH_CONFIDENCE"]
        default: []
        }
    }

    /// The refusal a Rekognition `Reasons` list names; `otherwise` when it names none the ledger knows.
    init(wireReasons reasons: [String], otherwise: FaceOutcome) {
        if reasons.contains("FACE_NOT_FOUND") {
            self = .faceNotFound
        } else if reasons.contains("ASSOCIATED_TO_A_DIFFERENT_USER") || reasons.contains("ASSOCIATED_TO_AN_EXISTING_USER") {
            self = .associatedToADifferentUser
        } else if reasons.contains("LOW_MATCH_CONFIDENCE") {
            self = .lowMatchConfidence
        } else {
            self = otherwise
        }
    }
}
