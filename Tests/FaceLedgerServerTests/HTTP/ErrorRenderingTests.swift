import Foundation
import Testing

extension HTTPTests {
    /// The ledger's refusals as the client reads them: the AWS envelope (`__type`, `message`), the type in
    /// `x-amzn-ErrorType`, and a fresh `x-amzn-RequestId` on every answer.
    @Suite("Error rendering")
    struct ErrorRenderingTests {
        @Test("a collection or user that does not exist is a ResourceNotFoundException, for reads and commands")
        func notFound() async throws {
            try await withLedgerApp { client in
                let missing = "The collection id: nowhere does not exist"
                for operation in ["DescribeCollection", "ListUsers", "ListFaces", "DeleteCollection"] {
                    expectError(
                        try await client.call(Target.rekognition(operation), #"{"CollectionId":"nowhere"}"#),
                        400, "ResourceNotFoundException", missing, "\(operation)")
                }
                expectError(
                    try await client.call(Target.rekognition("CreateUser"), #"{"CollectionId":"nowhere","UserId":"bob"}"#),
                    400, "ResourceNotFoundException", missing)
                try expectSuccess(try await client.call(Target.rekognition("CreateCollection"), #"{"CollectionId":"people"}"#))
                expectError(
                    try await client.call(Target.rekognition("DeleteUser"), #"{"CollectionId":"people","UserId":"nobody"}"#),
                    400, "ResourceNotFoundException", "The user id: nobody does not exist")
            }
        }

        @Test("creating what exists: ResourceAlreadyExistsException for a collection, ConflictException for a user")
        func alreadyExists() async throws {
            try await withLedgerApp { client in
                try expectSuccess(try await client.call(Target.rekognition("CreateCollection"), #"{"CollectionId":"people"}"#))
                expectError(
                    try await client.call(Target.rekognition("CreateCollection"), #"{"CollectionId":"people"}"#),
                    400, "ResourceAlreadyExistsException", "The collection id: people already exists")
                try expectSuccess(try await client.call(Target.rekognition("CreateUser"), #"{"CollectionId":"people","UserId":"bob"}"#))
                expectError(
                    try await client.call(Target.rekognition("CreateUser"), #"{"CollectionId":"people","UserId":"bob"}"#),
                    400, "ConflictException", "The user id: bob already exists in the collection")
            }
        }

        @Test("a token used again with other parameters is an IdempotentParameterMismatchException; with the same, the first answer")
        func idempotency() async throws {
            try await withLedgerApp { client in
                try expectSuccess(try await client.call(Target.rekognition("CreateCollection"), #"{"CollectionId":"people"}"#))
                let first = try await client.call(
                    Target.rekognition("CreateUser"),
                    #"{"CollectionId":"people","UserId":"bob","ClientRequestToken":"once"}"#)
                try expectSuccess(first)
                let retry = try await client.call(
                    Target.rekognition("CreateUser"),
                    #"{"CollectionId":"people","UserId":"bob","ClientRequestToken":"once"}"#)
                #expect(try expectSuccess(retry) == first.json)
                #expect(retry.requestId != first.requestId)
                expectError(
                    try await client.call(
                        Target.rekognition("CreateUser"),
                        #"{"CollectionId":"people","UserId":"eve","ClientRequestToken":"once"}"#),
                    400, "IdempotentParameterMismatchException", "ClientRequestToken once was already used with different parameters")
            }
        }

        @Test("a role that may not perform an operation is an AccessDeniedException naming principal, role and operation")
        func accessDenied() async throws {
            try await withLedgerApp { client in
                expectError(
                    try await client.call(
                        Target.rekognition("CreateUser"), #"{"CollectionId":"people","UserId":"bob"}"#,
                        as: TestKeys.auditor),
                    400, "AccessDeniedException", "User carol with role auditor is not authorized to perform CreateUser")
                expectError(
                    try await client.call(
                        Target.faceLedger("ForgetFaces"),
                        #"{"CollectionId":"people","FaceIds":["00000000-0000-4000-8000-000000000001"]}"#,
                        as: TestKeys.writer),
                    400, "AccessDeniedException", "User bob with role writer is not authorized to perform ForgetFaces")
                expectError(
                    try await client.call(Target.faceLedger("GetCollectionHistory"), #"{"CollectionId":"people"}"#, as: TestKeys.writer),
                    400, "AccessDeniedException", "User bob with role writer is not authorized to perform GetCollectionHistory")
            }
        }

        @Test("every answer, error or not, has its own request id")
        func requestIds() async throws {
            try await withLedgerApp { client in
                var seen = Set<String>()
                for body in [#"{"CollectionId":"people"}"#, #"{"CollectionId":"people"}"#, "[]", #"{"CollectionId":"no pe"}"#] {
                    let reply = try await client.call(Target.rekognition("CreateCollection"), body)
                    let id = try #require(reply.requestId)
                    #expect(UUID(uuidString: id) != nil)
                    #expect(seen.insert(id).inserted, "\(id) answered twice")
                }
                let unsigned = try await client.send(target: Target.rekognition("ListCollections"), body: [], signing: .none)
                #expect(unsigned.requestId.map { seen.insert($0).inserted } == true)
            }
        }
    }
}
