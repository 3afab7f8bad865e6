import Foundation
import LedgerDomain
import LedgerService
import RekognitionWire
import Synchronization

extension LedgerAPI {
    /// Read operations, answered from the read models.
    func read(_ operation: Operation, body: [UInt8]) async throws -> JSONValue {
        switch operation {
        case .describeCollection:
            let request = try decoded(CollectionRequest.self, body)
            let collection = try await existingCollection(request.CollectionId!)
            return try JSONValue(
                encoding: DescribeCollectionResponse(
                    CollectionARN: collection.arn, CreationTimestamp: collection.createdAt.timeIntervalSince1970,
                    FaceCount: collection.faceCount, UserCount: collection.userCount))

        case .listCollections:
            let request = try decoded(ListCollectionsRequest.self, body)
            let limit = request.MaxResults.flatMap { $0 > 0 ? $0 : nil } ?? 1000
            let after =
                try request.NextToken.map { token -> Int64 in
                    guard let position = Int64(try tokens.read(token, operation: operation.rawValue, collectionId: "")) else {
                        throw LedgerError(.invalidPaginationToken, "Invalid pagination token")
                    }
                    return position
                } ?? 0
            let page = try await readModels.collections(afterPosition: after, limit: limit + 1)
            let (items, next) = cut(page, limit: limit, operation: operation, scope: "") { String($0.createdPosition) }
            return try JSONValue(encoding: ListCollectionsResponse(CollectionIds: items.map(\.collectionId), NextToken: next))

        case .listUsers:
            let request = try decoded(ListUsersRequest.self, body)
            let collectionId = request.CollectionId!
            _ = try await existingCollection(collectionId)
            let limit = request.MaxResults ?? 100
            let after = try request.NextToken.map { try tokens.read($0, operation: operation.rawValue, collectionId: collectionId) }
            let page = try await readModels.users(in: collectionId, after: after, limit: limit + 1)
            let (items, next) = cut(page, limit: limit, operation: operation, scope: collectionId) { $0.userId }
            return try JSONValue(encoding: ListUsersResponse(Users: items.map(Self.userEntry), NextToken: next))

        case .listFaces:
            let request = try decoded(ListFacesRequest.self, body)
            let collectionId = request.CollectionId!
            _ = try await existingCollection(collectionId)
            let limit = request.MaxResults.flatMap { $0 > 0 ? $0 : nil } ?? 1000
            let after = try request.NextToken.map { try tokens.read($0, operation: operation.rawValue, collectionId: collectionId) }
            let page = try await readModels.faces(in: collectionId, userId: request.UserId, faceIds: request.FaceIds, after: after, limit: limit + 1)
            let (items, next) = cut(page, limit: limit, operation: operation, scope: collectionId) { $0.faceId }
            return try JSONValue(encoding: ListFacesResponse(Faces: items.map(Self.faceEntry), NextToken: next))

        case .searchFaces:
            let request = try decoded(SearchFacesRequest.self, body)
            let collectionId = request.CollectionId!
            _ = try await existingCollection(collectionId)
            guard
                let searched = try await readModels.faces(
                    in: collectionId, userId: nil, faceIds: [request.FaceId!], after: nil,
                    limit: 1
                ).first
            else {
                throw LedgerError.invalidParameter("The face \(request.FaceId!) is not in collection \(collectionId)")
            }
            let threshold = request.FaceMatchThreshold ?? Limits.defaultSearchThreshold
            // The collection is scanned a page at a time, keeping the best MaxFaces: memory is bounded by
            // the page and the answer, not by the collection.
            let best = Mutex(TopMatches<FaceSummary>(limit: request.MaxFaces ?? 4096))
            // A face without biometrics (forgotten, or indexed upstream) matches nothing and nobody.
            if !searched.embedding.isEmpty {
                try await readModels.forEachFacePage(in: collectionId) { page in
                    best.withLock { best in
                        for face in page where face.faceId != searched.faceId && !face.embedding.isEmpty {
                            let similarity = Similarity.similarity(searched.embedding, face.embedding)
                            if similarity >= threshold { best.offer(face, key: face.faceId, score: similarity) }
                        }
                    }
                }
            }
            let matches = best.withLock { $0.best }.map { FaceMatch(Similarity: $0.score, Face: Self.faceEntry($0.item)) }
            return try JSONValue(encoding: SearchFacesResponse(SearchedFaceId: searched.faceId, FaceMatches: matches))

        case .searchUsers:
            let request = try decoded(SearchUsersRequest.self, body)
            let collectionId = request.CollectionId!
            _ = try await existingCollection(collectionId)
            var response = SearchUsersResponse(UserMatches: [], SearchedFace: nil, SearchedUser: nil)
            let query: [Float]?
            if let faceId = request.FaceId {
                guard let face = try await readModels.faces(in: collectionId, userId: nil, faceIds: [faceId], after: nil, limit: 1).first else {
                    throw LedgerError.invalidParameter("The face \(faceId) is not in collection \(collectionId)")
                }
                query = face.embedding.isEmpty ? nil : face.embedding
                response.SearchedFace = FaceIdEntry(FaceId: faceId)
            } else {
                let userId = request.UserId!
                query = try await readModels.userVector(in: collectionId, userId: userId)
                response.SearchedUser = SearchedUser(UserId: userId)
            }
            let threshold = request.UserMatchThreshold ?? Limits.defaultSearchThreshold
            var best = TopMatches<UserSummary>(limit: request.MaxUsers ?? 100)
            if let query {
                try await readModels.forEachUserPage(in: collectionId) { page in
                    for user in page where user.userId != request.UserId {
                        guard let vector = user.vector else { continue }
                        let similarity = Similarity.similarity(query, vector)
                        if similarity >= threshold { best.offer(user, key: user.userId, score: similarity) }
                    }
                }
            }
            response.UserMatches = best.best.map { UserMatch(Similarity: $0.score, User: Self.userEntry($0.item)) }
            return try JSONValue(encoding: response)

        case .getFaceHistory: return try await history(operation, decoded(GetFaceHistoryRequest.self, body))
        case .getUserHistory: return try await history(operation, decoded(GetUserHistoryRequest.self, body))
        case .getPrincipalHistory: return try await history(operation, decoded(GetPrincipalHistoryRequest.self, body))
        case .getCollectionHistory: return try await history(operation, decoded(GetCollectionHistoryRequest.self, body))
        case .getRequestHistory: return try await history(operation, decoded(GetRequestHistoryRequest.self, body))

        default:
            throw LedgerError(.internalServerError, "Internal server error")
        }
    }

    /// An audit operation: one page of the subject's entries from the log, oldest first. The token
    /// holds the page's last position and is bound to the operation and the subject.
    private func history(_ operation: Operation, _ request: some AuditRequest) async throws -> JSONValue {
        let subject = request.subject
        let limit = request.MaxResults ?? 100
        let after =
            try request.NextToken.map { token -> Int64 in
                guard let position = Int64(try tokens.read(token, operation: operation.rawValue, collectionId: subject.tokenScope)),
                    position >= 0
                else { throw LedgerError(.invalidPaginationToken, "Invalid pagination token") }
                return position
            } ?? 0
        let window = AuditWindow(afterPosition: after, from: request.window.from, to: request.window.to)
        let page = try await audit.entries(subject, window: window, limit: limit + 1)
        let (items, next) = cut(page, limit: limit, operation: operation, scope: subject.tokenScope) { String($0.position) }
        return try JSONValue(encoding: HistoryResponse(Entries: items.map(\.json), NextToken: next))
    }

    /// One page of a keyset listing read with `limit + 1` rows: the first `limit`, and a token for the
    /// rest (nil on the last page) holding the last listed item's key.
    private func cut<Item>(
        _ fetched: [Item], limit: Int, operation: Operation, scope: String, key: (Item) -> String
    ) -> (items: ArraySlice<Item>, nextToken: String?) {
        guard fetched.count > limit else { return (fetched[...], nil) }
        let token = tokens.make(operation: operation.rawValue, collectionId: scope, lastKey: key(fetched[limit - 1]))
        return (fetched.prefix(limit), token)
    }

    private func decoded<R: OperationRequest>(_: R.Type, _ body: [UInt8]) throws -> R {
        let request = try RequestDecoding.decode(R.self, from: body)
        try request.validate()
        return request
    }

    private func existingCollection(_ id: String) async throws -> CollectionSummary {
        guard let collection = try await readModels.collection(id) else { throw LedgerError(refusal: .collectionNotFound(id)) }
        return collection
    }

    static func faceEntry(_ face: FaceSummary) -> FaceEntry {
        FaceEntry(
            FaceId: face.faceId, ImageId: face.imageId, ExternalImageId: face.externalImageId, Confidence: face.confidence,
            UserId: face.userId)
    }

    static func userEntry(_ user: UserSummary) -> UserEntry { UserEntry(UserId: user.userId, UserStatus: user.status) }
}
