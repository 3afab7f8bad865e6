import Foundation
import Testing

extension HTTPTests {
    /// The model's constraints, checked by `Validator`, as a client reads them: InvalidParameterException
    /// with every problem listed AWS style, member names in lower camel case, values shown up to 64 characters.
    @Suite("Validation messages")
    struct ValidationMessageTests {
        static let pattern = #"[a-zA-Z0-9_.\-]+"#
        static let userPattern = #"[a-zA-Z0-9_.\-:]+"#
        static let faceIdPattern = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        static let face = "00000000-0000-4000-8000-000000000001"
        static let lettered = "abcdef00-0000-4000-8000-00000000000f"

        @Test("required members, patterns and lengths of identifiers, one message per problem")
        func identifiers() async throws {
            try await withLedgerApp { client in
                expectInvalidParameter(
                    try await client.call(Target.rekognition("CreateUser"), #"{"CollectionId":"people"}"#),
                    "1 validation error detected: Value null at 'userId' failed to satisfy constraint: Member must not be null")
                expectInvalidParameter(
                    try await client.call(Target.rekognition("CreateCollection"), "{}"),
                    "1 validation error detected: Value null at 'collectionId' failed to satisfy constraint: Member must not be null")
                expectInvalidParameter(
                    try await client.call(Target.rekognition("CreateCollection"), #"{"CollectionId":"my people"}"#),
                    "1 validation error detected: Value 'my people' at 'collectionId' failed to satisfy constraint: "
                        + "Member must satisfy regular expression pattern: \(Self.pattern)")
                // Read operations are checked alike (and nothing is read).
                expectInvalidParameter(
                    try await client.call(Target.rekognition("DescribeCollection"), #"{"CollectionId":"people/../x"}"#),
                    "1 validation error detected: Value 'people/../x' at 'collectionId' failed to satisfy constraint: "
                        + "Member must satisfy regular expression pattern: \(Self.pattern)")
                // A long value is shown cut at 64 characters.
                expectInvalidParameter(
                    try await client.call(Target.rekognition("CreateCollection"), #"{"CollectionId":"\#(String(repeating: "c", count: 256))"}"#),
                    "1 validation error detected: Value '\(String(repeating: "c", count: 64))…' at 'collectionId' failed to satisfy constraint: "
                        + "Member must have length less than or equal to 255")
                expectInvalidParameter(
                    try await client.call(
                        Target.rekognition("CreateUser"),
                        #"{"CollectionId":"people","UserId":"\#(String(repeating: "u", count: 129))"}"#),
                    "1 validation error detected: Value '\(String(repeating: "u", count: 64))…' at 'userId' failed to satisfy constraint: "
                        + "Member must have length less than or equal to 128")
                // Every problem, in the order of the members, with the count.
                expectInvalidParameter(
                    try await client.call(Target.rekognition("CreateUser"), #"{"CollectionId":"","UserId":"bob@example.com"}"#),
                    "2 validation errors detected: Value '' at 'collectionId' failed to satisfy constraint: "
                        + "Member must have length greater than or equal to 1; Value 'bob@example.com' at 'userId' failed to satisfy constraint: "
                        + "Member must satisfy regular expression pattern: \(Self.userPattern)")
                expectInvalidParameter(
                    try await client.call(
                        Target.rekognition("CreateUser"),
                        #"{"CollectionId":"people","UserId":"bob","ClientRequestToken":"token.with.dots"}"#),
                    "1 validation error detected: Value 'token.with.dots' at 'clientRequestToken' failed to satisfy constraint: "
                        + "Member must satisfy regular expression pattern: ^[a-zA-Z0-9-_]+$")
            }
        }

        @Test("numbers out of range and lists of the wrong length")
        func rangesAndLists() async throws {
            try await withLedgerApp { client in
                for maxResults in [0, 501, -1] {
                    expectInvalidParameter(
                        try await client.call(Target.rekognition("ListUsers"), #"{"CollectionId":"people","MaxResults":\#(maxResults)}"#),
                        "1 validation error detected: Value '\(maxResults)' at 'maxResults' failed to satisfy constraint: "
                            + "Member must have value between 1 and 500", "MaxResults \(maxResults)")
                }
                expectInvalidParameter(
                    try await client.call(Target.rekognition("ListFaces"), #"{"CollectionId":"people","MaxResults":4097}"#),
                    "1 validation error detected: Value '4097' at 'maxResults' failed to satisfy constraint: "
                        + "Member must have value between 0 and 4096")
                expectInvalidParameter(
                    try await client.call(
                        Target.rekognition("AssociateFaces"),
                        #"{"CollectionId":"people","UserId":"alice","FaceIds":["\#(Self.face)"],"UserMatchThreshold":100.5}"#),
                    "1 validation error detected: Value '100.5' at 'userMatchThreshold' failed to satisfy constraint: "
                        + "Member must have value between 0 and 100")
                expectInvalidParameter(
                    try await client.call(Target.rekognition("AssociateFaces"), #"{"CollectionId":"people","UserId":"alice","FaceIds":[]}"#),
                    "1 validation error detected: Value at 'faceIds' failed to satisfy constraint: "
                        + "Member must have length greater than or equal to 1")
                let ids = (1...101).map { "\"" + String(format: "00000000-0000-4000-8000-%012d", $0) + "\"" }.joined(separator: ",")
                expectInvalidParameter(
                    try await client.call(
                        Target.rekognition("AssociateFaces"),
                        #"{"CollectionId":"people","UserId":"alice","FaceIds":[\#(ids)]}"#),
                    "1 validation error detected: Value at 'faceIds' failed to satisfy constraint: Member must have length less than or equal to 100")
                expectInvalidParameter(
                    try await client.call(
                        Target.rekognition("DisassociateFaces"),
                        #"{"CollectionId":"people","UserId":"alice","FaceIds":["\#(Self.lettered.uppercased())"]}"#),
                    "1 validation error detected: Value '\(Self.lettered.uppercased())' at 'faceIds.1.member' failed to satisfy constraint: "
                        + "Member must satisfy regular expression pattern: \(Self.faceIdPattern)")
                expectInvalidParameter(
                    try await client.call(
                        Target.rekognition("ListUsers"),
                        #"{"CollectionId":"people","NextToken":"\#(String(repeating: "n", count: 256))"}"#),
                    "1 validation error detected: Value '\(String(repeating: "n", count: 64))…' at 'nextToken' failed to satisfy constraint: "
                        + "Member must have length less than or equal to 255")
                expectInvalidParameter(
                    try await client.call(Target.rekognition("SearchUsers"), #"{"CollectionId":"people"}"#),
                    "1 validation error detected: Exactly one of FaceId and UserId must be given")
            }
        }

        @Test("CreateCollection's tags and ImportFaces' faces")
        func tagsAndFaces() async throws {
            try await withLedgerApp { client in
                expectInvalidParameter(
                    try await client.call(Target.rekognition("CreateCollection"), #"{"CollectionId":"tagged","Tags":{"aws:team":"x"}}"#),
                    #"1 validation error detected: Value 'aws:team' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: "#
                        + #"[Member must satisfy regular expression pattern: ^(?!aws:)[\p{L}\p{Z}\p{N}_.:/=+\-@]*$]"#)
                expectInvalidParameter(
                    try await client.call(Target.rekognition("CreateCollection"), #"{"CollectionId":"tagged","Tags":{"team":"a;b"}}"#),
                    #"1 validation error detected: Value 'a;b' at 'tags.team' failed to satisfy constraint: Map values must satisfy constraint: "#
                        + #"[Member must satisfy regular expression pattern: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$]"#)
                expectInvalidParameter(
                    try await client.call(Target.faceLedger("ImportFaces"), #"{"CollectionId":"people"}"#),
                    "1 validation error detected: Value null at 'faces' failed to satisfy constraint: Member must not be null")
                expectInvalidParameter(
                    try await client.call(Target.faceLedger("ImportFaces"), #"{"CollectionId":"people","Faces":[]}"#),
                    "1 validation error detected: Value at 'faces' failed to satisfy constraint: Member must have between 1 and 4096 items")
                expectInvalidParameter(
                    try await client.call(
                        Target.faceLedger("ImportFaces"),
                        #"{"CollectionId":"people","Faces":[{"Embedding":[1,0]},{"ExternalImageId":"a b","Embedding":[1e39,1]}]}"#),
                    "2 validation errors detected: Value 'a b' at 'faces.2.member.externalImageId' failed to satisfy constraint: "
                        + "Member must satisfy regular expression pattern: \(Self.userPattern); "
                        + "Value at 'faces.2.member.embedding' failed to satisfy constraint: Member must hold finite single-precision numbers")
                expectInvalidParameter(
                    try await client.call(Target.faceLedger("ImportFaces"), #"{"CollectionId":"people","Faces":[{"ExternalImageId":"x"}]}"#),
                    "1 validation error detected: Value null at 'faces.1.member.embedding' failed to satisfy constraint: Member must not be null")
            }
        }

        @Test("the ledger's own checks of ImportFaces, once the collection is known")
        func importChecks() async throws {
            try await withLedgerApp { client in
                try expectSuccess(try await client.call(Target.rekognition("CreateCollection"), #"{"CollectionId":"people"}"#))
                expectInvalidParameter(
                    try await client.call(Target.faceLedger("ImportFaces"), #"{"CollectionId":"people","Faces":[{"Embedding":[1]}]}"#),
                    "Faces[0].Embedding must have between 2 and 4096 numbers")
                expectInvalidParameter(
                    try await client.call(Target.faceLedger("ImportFaces"), #"{"CollectionId":"people","Faces":[{"Embedding":[0,0]}]}"#),
                    "Faces[0].Embedding must be finite numbers with a non-zero norm")
                expectInvalidParameter(
                    try await client.call(
                        Target.faceLedger("ImportFaces"),
                        #"{"CollectionId":"people","Faces":[{"Embedding":[1,0]},{"Embedding":[1,0,0]}]}"#),
                    "Faces[1].Embedding has 3 numbers; faces of collection people have 2")
                expectInvalidParameter(
                    try await client.call(
                        Target.faceLedger("ImportFaces"),
                        #"{"CollectionId":"people","Faces":[{"FaceId":"\#(Self.face)","Embedding":[1,0]},"#
                            + #"{"FaceId":"\#(Self.face)","Embedding":[0,1]}]}"#),
                    "Faces[1].FaceId \(Self.face) already exists")
            }
        }
    }
}
