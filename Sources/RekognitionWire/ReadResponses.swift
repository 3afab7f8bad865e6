import LedgerDomain

/// Response shapes of the read operations, with the Rekognition model's member names (absent
/// members are left out).
public struct DescribeCollectionResponse: Codable, Hashable, Sendable {
    public var CollectionARN: String
    /// Seconds since 1970, as the SDKs read a timestamp of AWS JSON.
    public var CreationTimestamp: Double
    public var FaceCount: Int
    public var UserCount: Int
    public var FaceModelVersion = faceModelVersion

    public init(CollectionARN: String, CreationTimestamp: Double, FaceCount: Int, UserCount: Int) {
        self.CollectionARN = CollectionARN
        self.CreationTimestamp = CreationTimestamp
        self.FaceCount = FaceCount
        self.UserCount = UserCount
    }
}

public struct ListCollectionsResponse: Codable, Hashable, Sendable {
    public var CollectionIds: [String]
    public var FaceModelVersions: [String]
    public var NextToken: String?

    public init(CollectionIds: [String], NextToken: String?) {
        self.CollectionIds = CollectionIds
        self.FaceModelVersions = CollectionIds.map { _ in faceModelVersion }
        self.NextToken = NextToken
    }
}

/// The model's `User`.
public struct UserEntry: Codable, Hashable, Sendable {
    public var UserId: String
    public var UserStatus: UserStatus

    public init(UserId: String, UserStatus: UserStatus) {
        self.UserId = UserId
        self.UserStatus = UserStatus
    }
}

public struct ListUsersResponse: Codable, Hashable, Sendable {
    public var Users: [UserEntry]
    public var NextToken: String?

    public init(Users: [UserEntry], NextToken: String?) {
        self.Users = Users
        self.NextToken = NextToken
    }
}

/// The model's `Face`.
public struct FaceEntry: Codable, Hashable, Sendable {
    public var FaceId: String
    public var ImageId: String
    public var ExternalImageId: String?
    public var Confidence: Double
    public var IndexFacesModelVersion = faceModelVersion
    public var UserId: String?

    public init(FaceId: String, ImageId: String, ExternalImageId: String?, Confidence: Double, UserId: String?) {
        self.FaceId = FaceId
        self.ImageId = ImageId
        self.ExternalImageId = ExternalImageId
        self.Confidence = Confidence
        self.UserId = UserId
    }
}

public struct ListFacesResponse: Codable, Hashable, Sendable {
    public var Faces: [FaceEntry]
    public var FaceModelVersion = faceModelVersion
    public var NextToken: String?

    public init(Faces: [FaceEntry], NextToken: String?) {
        self.Faces = Faces
        self.NextToken = NextToken
    }
}

public struct FaceMatch: Codable, Hashable, Sendable {
    public var Similarity: Double
    public var Face: FaceEntry

    public init(Similarity: Double, Face: FaceEntry) {
        self.Similarity = Similarity
        self.Face = Face
    }
}

public struct SearchFacesResponse: Codable, Hashable, Sendable {
    public var SearchedFaceId: String
    public var FaceMatches: [FaceMatch]
    public var FaceModelVersion = faceModelVersion

    public init(SearchedFaceId: String, FaceMatches: [FaceMatch]) {
        self.SearchedFaceId = SearchedFaceId
        self.FaceMatches = FaceMatches
    }
}

public struct UserMatch: Codable, Hashable, Sendable {
    public var Similarity: Double
    public var User: UserEntry

    public init(Similarity: Double, User: UserEntry) {
        self.Similarity = Similarity
        self.User = User
    }
}

public struct SearchedUser: Codable, Hashable, Sendable {
    public var UserId: String

    public init(UserId: String) {
        self.UserId = UserId
    }
}

public struct SearchUsersResponse: Codable, Hashable, Sendable {
    public var UserMatches: [UserMatch]
    public var FaceModelVersion = faceModelVersion
    /// One of the two, as the request searched by a face or by a user.
    public var SearchedFace: FaceIdEntry?
    public var SearchedUser: SearchedUser?

    public init(UserMatches: [UserMatch], SearchedFace: FaceIdEntry?, SearchedUser: SearchedUser?) {
        self.UserMatches = UserMatches
        self.SearchedFace = SearchedFace
        self.SearchedUser = SearchedUser
    }
}

/// The audit operations' answer (FaceLedger.Get*History): entries as the audit renders them.
public struct HistoryResponse: Codable, Hashable, Sendable {
    public var Entries: [JSONValue]
    public var NextToken: String?

    public init(Entries: [JSONValue], NextToken: String?) {
        self.Entries = Entries
        self.NextToken = NextToken
    }
}
