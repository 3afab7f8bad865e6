import LedgerDomain

extension CommandOutcome {
    /// What an upstream's successful answer to `command` came to, read leniently: a member the
    /// ledger does not need may be missing, and what cannot be read counts as absent. `mirror`
    /// records it.
    public init(upstreamAnswer answer: JSONValue, to command: LedgerCommand) {
        func changes(_ changedMember: String, _ unsuccessfulMember: String, otherwise: FaceOutcome) -> FaceChanges {
            FaceChanges(
                changed: answer[changedMember]?.arrayValue.compactMap { $0.stringValue ?? $0["FaceId"]?.stringValue } ?? [],
                refused: (answer[unsuccessfulMember]?.arrayValue ?? []).compactMap { entry in
                    guard let faceId = entry["FaceId"]?.stringValue else { return nil }
                    let reasons = entry["Reasons"]?.arrayValue.compactMap(\.stringValue) ?? []
                    return RefusedFace(
                        faceId: faceId, reason: FaceOutcome(wireReasons: reasons, otherwise: otherwise),
                        ownerUserId: entry["UserId"]?.stringValue, confidence: entry["Confidence"]?.doubleValue)
                })
        }
        // The user's status as answered; when it is missing (a mirror does not need it), what the embedded
        // engine would answer.
        func status(_ changes: FaceChanges) -> UserStatus {
            answer["UserStatus"]?.stringValue.flatMap(UserStatus.init(rawValue:)) ?? (changes.changed.isEmpty ? .active : .updating)
        }
        switch command {
        case .createCollection:
            self = .collectionCreated(arn: answer["CollectionArn"]?.stringValue ?? "")
        case .deleteCollection:
            self = .collectionDeleted
        case .createUser:
            self = .userCreated
        case .deleteUser:
            self = .userDeleted
        case .associateFaces:
            // Rekognition's answer for faces past the user's 100: no reasons.
            let associated = changes("AssociatedFaces", "UnsuccessfulFaceAssociations", otherwise: .userFaceLimit)
            self = .facesAssociated(associated, userStatus: status(associated))
        case .disassociateFaces:
            let disassociated = changes("DisassociatedFaces", "UnsuccessfulFaceDisassociations", otherwise: .associatedToADifferentUser)
            self = .facesDisassociated(disassociated, userStatus: status(disassociated))
        case .deleteFaces:
            self = .facesDeleted(changes("DeletedFaces", "UnsuccessfulFaceDeletions", otherwise: .associatedToADifferentUser))
        case .forgetFaces:
            self = .facesForgotten(changes("ForgottenFaces", "UnsuccessfulFaceForgets", otherwise: .faceNotFound))
        case .importFaces, .indexFaces:
            // The faces of `FaceRecords[].Face`.
            self = .facesImported(
                (answer["FaceRecords"]?.arrayValue ?? []).compactMap { record in
                    guard let face = record["Face"], let faceId = face["FaceId"]?.stringValue else { return nil }
                    return FaceImported(
                        faceId: faceId, externalImageId: face["ExternalImageId"]?.stringValue,
                        imageId: face["ImageId"]?.stringValue ?? "", confidence: face["Confidence"]?.doubleValue ?? 0)
                })
        }
    }
}
