import Foundation
import LedgerDomain
import LedgerService

/// Reads a collection's users and associations from the upstream (ListUsers, ListFaces), for
/// `reconcile --check`.
public enum UpstreamDrift {
    public struct ReadError: Error, CustomStringConvertible {
        public let description: String
    }

    public static func observe(collectionId: String, client: UpstreamClient) async throws -> UpstreamObservation {
        var users: Set<String> = []
        for page in try await pages("ListUsers", collectionId: collectionId, maxResults: 500, client: client) {
            for user in page["Users"]?.arrayValue ?? [] { if let id = user["UserId"]?.stringValue { users.insert(id) } }
        }
        var faces: [String: String?] = [:]
        for page in try await pages("ListFaces", collectionId: collectionId, maxResults: 4096, client: client) {
            for face in page["Faces"]?.arrayValue ?? [] {
                if let id = face["FaceId"]?.stringValue { faces[id] = .some(face["UserId"]?.stringValue) }
            }
        }
        return UpstreamObservation(users: users, faces: faces)
    }

    private static func pages(_ operation: String, collectionId: String, maxResults: Int, client: UpstreamClient) async throws -> [JSONValue] {
        var pages: [JSONValue] = []
        var nextToken: String?
        repeat {
            var request: [String: JSONValue] = ["CollectionId": .string(collectionId), "MaxResults": .integer(maxResults)]
            if let nextToken { request["NextToken"] = .string(nextToken) }
            switch await client.send(target: "RekognitionService." + operation, body: Array(JSONValue.object(request).data)) {
            case .answered(let answer) where answer.status == 200:
                guard let page = try? JSONValue(parsing: Data(answer.body)) else {
                    throw ReadError(description: "the upstream's \(operation) answer is not JSON")
                }
                pages.append(page)
                nextToken = page["NextToken"]?.stringValue
            case .answered(let answer):
                throw ReadError(
                    description: "the upstream answered \(operation) with \(answer.status) \(answer.errorCode ?? ""): "
                        + String(decoding: answer.body.prefix(300), as: UTF8.self))
            case .failed(let reason, _):
                throw ReadError(description: "the upstream did not answer \(operation): \(reason)")
            }
        } while nextToken != nil
        return pages
    }
}
