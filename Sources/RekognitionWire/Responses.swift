import LedgerDomain

/// The face model version the embedded engine answers with, where Rekognition names its model.
public let faceModelVersion = "7.0"

/// Response shapes of the Rekognition model, with its member names (absent members are left out).
public struct CreateCollectionResponse: Codable, Hashable, Sendable {
    public var StatusCode: Int
    public var CollectionArn: String
    public var FaceModelVersion: String

    public init(StatusCode: Int, CollectionArn: String, FaceModelVersion: String) {
        self.StatusCode = StatusCode
        self.CollectionArn = CollectionArn
        self.FaceModelVersion = FaceModelVersion
    }
}

public struct StatusCodeResponse: Codable, Hashable, Sendable {
    public var StatusCode: Int

    public init(StatusCode: Int) {
        self.StatusCode = StatusCode
    }
}

public struct EmptyResponse: Codable, Hashable, Sendable {
    public init() {}
}

public struct FaceIdEntry: Codable, Hashable, Sendable {
    public var FaceId: String

    public init(FaceId: String) {
        self.FaceId = FaceId
    }
}

public struct UnsuccessfulFace: Codable, Hashable, Sendable {
    public var FaceId: String
    public var UserId: String?
    public var Confidence: Double?
    public var Reasons: [String]

    public init(FaceId: String, UserId: String? = nil, Confidence: Double? = nil, Reasons: [String]) {
        self.FaceId = FaceId
        self.UserId = UserId
        self.Confidence = Confidence
        self.Reasons = Reasons
    }
}

public struct AssociateFacesResponse: Codable, Hashable, Sendable {
    public var AssociatedFaces: [FaceIdEntry]
    public var UnsuccessfulFaceAssociations: [UnsuccessfulFace]
    public var UserStatus: UserStatus

    public init(AssociatedFaces: [FaceIdEntry], UnsuccessfulFaceAssociations: [UnsuccessfulFace], UserStatus: UserStatus) {
        self.AssociatedFaces = AssociatedFaces
        self.UnsuccessfulFaceAssociations = UnsuccessfulFaceAssociations
        self.UserStatus = UserStatus
    }
}

public struct DisassociateFacesResponse: Codable, Hashable, Sendable {
    public var DisassociatedFaces: [FaceIdEntry]
    public var UnsuccessfulFaceDisassociations: [UnsuccessfulFace]
    public var UserStatus: UserStatus

    public init(DisassociatedFaces: [FaceIdEntry], UnsuccessfulFaceDisassociations: [UnsuccessfulFace], UserStatus: UserStatus) {
        self.DisassociatedFaces = DisassociatedFaces
        self.UnsuccessfulFaceDisassociations = UnsuccessfulFaceDisassociations
        self.UserStatus = UserStatus
    }
}

/// FaceLedger.ForgetFaces.
public struct ForgetFacesResponse: Codable, Hashable, Sendable {
    /// Absent when no face was forgotten, as DeleteFaces leaves out an empty DeletedFaces.
    public var ForgottenFaces: [String]?
    public var UnsuccessfulFaceForgets: [UnsuccessfulFace]

    public init(ForgottenFaces: [String], UnsuccessfulFaceForgets: [UnsuccessfulFace]) {
        self.ForgottenFaces = ForgottenFaces.isEmpty ? nil : ForgottenFaces
        self.UnsuccessfulFaceForgets = UnsuccessfulFaceForgets
    }
}

public struct DeleteFacesResponse: Codable, Hashable, Sendable {
    /// Absent when no face was deleted: the model's FaceIdList has at least one member, and AWS
    /// leaves the member out rather than send an empty list.
    public var DeletedFaces: [String]?
    public var UnsuccessfulFaceDeletions: [UnsuccessfulFace]

    public init(DeletedFaces: [String], UnsuccessfulFaceDeletions: [UnsuccessfulFace]) {
        self.DeletedFaces = DeletedFaces.isEmpty ? nil : DeletedFaces
        self.UnsuccessfulFaceDeletions = UnsuccessfulFaceDeletions
    }
}

public struct ImportedFaceRecord: Codable, Hashable, Sendable {
    public struct FaceSummary: Codable, Hashable, Sendable {
        public var FaceId: String
        public var ExternalImageId: String?
        public var ImageId: String
        public var Confidence: Double

        public init(FaceId: String, ExternalImageId: String? = nil, ImageId: String, Confidence: Double) {
            self.FaceId = FaceId
            self.ExternalImageId = ExternalImageId
            self.ImageId = ImageId
            self.Confidence = Confidence
        }
    }
    public var Face: FaceSummary

    public init(Face: FaceSummary) {
        self.Face = Face
    }
}

public struct ImportFacesResponse: Codable, Hashable, Sendable {
    public var FaceRecords: [ImportedFaceRecord]

    public init(FaceRecords: [ImportedFaceRecord]) {
        self.FaceRecords = FaceRecords
    }
}
