import Foundation
import LedgerDomain
import Testing

extension HTTPTests {
    /// Keyset pagination with signed tokens: pages of MaxResults, a NextToken on every page but the last,
    /// and InvalidPaginationTokenException for a token altered, made up, or minted for another operation
    /// or collection.
    @Suite("Pagination tokens")
    struct PaginationTokenTests {
        static let invalid = "Invalid pagination token"

        /// Every page of `operation` on `body` (JSON members, without the braces) of `maxResults` items,
        /// following NextToken to the end; `items` reads a page's items.
        static func pages(
            _ client: LedgerTestClient, _ operation: String, _ members: String, maxResults: Int, items: (JSONValue) -> [String]
        ) async throws -> [[String]] {
            var pages: [[String]] = []
            var token: String?
            repeat {
                let next = token.map { #","NextToken":"\#($0)""# } ?? ""
                let separator = members.isEmpty ? "" : ","
                let page = try expectSuccess(
                    try await client.call(
                        Target.rekognition(operation), #"{\#(members)\#(separator)"MaxResults":\#(maxResults)\#(next)}"#))
                pages.append(items(page))
                token = page["NextToken"]?.stringValue
                try #require(pages.count <= 10, "NextToken never ends")
            } while token != nil
            return pages
        }

        static func faceId(_ n: Int) -> String { String(format: "00000000-0000-4000-8000-%012d", n) }

        /// Collections `c` and `d`; users u1…u5 in `c`; faces 1…5 in `c`.
        static func populate(_ client: LedgerTestClient) async throws {
            for collection in ["c", "d"] {
                try expectSuccess(try await client.call(Target.rekognition("CreateCollection"), #"{"CollectionId":"\#(collection)"}"#))
            }
            for user in 1...5 {
                try expectSuccess(try await client.call(Target.rekognition("CreateUser"), #"{"CollectionId":"c","UserId":"u\#(user)"}"#))
            }
            let faces = (1...5).map { #"{"FaceId":"\#(faceId($0))","Embedding":[1,\#($0)]}"# }.joined(separator: ",")
            try expectSuccess(try await client.call(Target.faceLedger("ImportFaces"), #"{"CollectionId":"c","Faces":[\#(faces)]}"#))
        }

        @Test("ListUsers, ListFaces and ListCollections page by MaxResults and follow NextToken to the end")
        func followToTheEnd() async throws {
            try await withLedgerApp { client in
                try await Self.populate(client)
                let users = try await Self.pages(client, "ListUsers", #""CollectionId":"c""#, maxResults: 2) { page in
                    page["Users"]?.arrayValue.compactMap { $0["UserId"]?.stringValue } ?? []
                }
                #expect(users == [["u1", "u2"], ["u3", "u4"], ["u5"]])
                let faces = try await Self.pages(client, "ListFaces", #""CollectionId":"c""#, maxResults: 3) { page in
                    page["Faces"]?.arrayValue.compactMap { $0["FaceId"]?.stringValue } ?? []
                }
                #expect(faces == [[1, 2, 3].map(Self.faceId), [4, 5].map(Self.faceId)])
                let collections = try await Self.pages(client, "ListCollections", "", maxResults: 1) { page in
                    page["CollectionIds"]?.arrayValue.compactMap(\.stringValue) ?? []
                }
                #expect(collections == [["c"], ["d"]])
                // A page that holds the rest exactly has no NextToken.
                let whole = try expectSuccess(try await client.call(Target.rekognition("ListUsers"), #"{"CollectionId":"c","MaxResults":5}"#))
                #expect(whole["NextToken"] == nil && whole["Users"]?.arrayValue.count == 5)
            }
        }

        @Test("a tampered or made-up token is an InvalidPaginationTokenException")
        func tampered() async throws {
            try await withLedgerApp { client in
                try await Self.populate(client)
                let page = try expectSuccess(try await client.call(Target.rekognition("ListUsers"), #"{"CollectionId":"c","MaxResults":2}"#))
                let token = try #require(page["NextToken"]?.stringValue)
                let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                try #require(parts.count == 2)
                // The key of another user, under the original signature; the signature altered; garbage.
                let otherKey = Data("u4".utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
                // (The first character: the last one of 16 bytes in base64 carries padding bits too.)
                let flipped = (parts[1].hasPrefix("A") ? "B" : "A") + String(parts[1].dropFirst())
                for bad in [otherKey + "." + parts[1], parts[0] + "." + flipped, "not-a-token", parts[0], token + "."] {
                    expectError(
                        try await client.call(Target.rekognition("ListUsers"), #"{"CollectionId":"c","NextToken":"\#(bad)"}"#),
                        400, "InvalidPaginationTokenException", Self.invalid, "\(bad)")
                }
            }
        }

        @Test("a token is good only for the operation and the collection that minted it")
        func boundToOperationAndCollection() async throws {
            try await withLedgerApp { client in
                try await Self.populate(client)
                try expectSuccess(try await client.call(Target.rekognition("CreateUser"), #"{"CollectionId":"d","UserId":"u1"}"#))
                try expectSuccess(try await client.call(Target.rekognition("CreateUser"), #"{"CollectionId":"d","UserId":"u2"}"#))
                let users = try expectSuccess(try await client.call(Target.rekognition("ListUsers"), #"{"CollectionId":"c","MaxResults":1}"#))
                let userToken = try #require(users["NextToken"]?.stringValue)
                let faces = try expectSuccess(try await client.call(Target.rekognition("ListFaces"), #"{"CollectionId":"c","MaxResults":1}"#))
                let faceToken = try #require(faces["NextToken"]?.stringValue)
                let collections = try expectSuccess(try await client.call(Target.rekognition("ListCollections"), #"{"MaxResults":1}"#))
                let collectionToken = try #require(collections["NextToken"]?.stringValue)

                let misuses: [(String, String, String)] = [
                    ("ListUsers token, other collection", "ListUsers", #"{"CollectionId":"d","NextToken":"\#(userToken)"}"#),
                    ("ListFaces token on ListUsers", "ListUsers", #"{"CollectionId":"c","NextToken":"\#(faceToken)"}"#),
                    ("ListUsers token on ListFaces", "ListFaces", #"{"CollectionId":"c","NextToken":"\#(userToken)"}"#),
                    ("ListCollections token on ListUsers", "ListUsers", #"{"CollectionId":"c","NextToken":"\#(collectionToken)"}"#),
                    ("ListUsers token on ListCollections", "ListCollections", #"{"NextToken":"\#(userToken)"}"#),
                ]
                for (name, operation, body) in misuses {
                    expectError(
                        try await client.call(Target.rekognition(operation), body), 400, "InvalidPaginationTokenException", Self.invalid,
                        "\(name)")
                }
                // The token still works where it was minted.
                let rest = try expectSuccess(
                    try await client.call(
                        Target.rekognition("ListUsers"),
                        #"{"CollectionId":"c","NextToken":"\#(userToken)"}"#))
                #expect(rest["Users"]?.arrayValue.compactMap { $0["UserId"]?.stringValue } == ["u2", "u3", "u4", "u5"])
            }
        }
    }
}
