import Testing

extension HTTPTests {
    /// `RequestDecoding`: bodies that are not a JSON object, members of the wrong JSON type, numbers that
    /// do not fit their member, and strings the log cannot store, as a client reads the refusal.
    @Suite("Request decoding")
    struct RequestDecodingTests {
        static let notAnObject = "The request body is not a JSON object"

        @Test("a body that is not one JSON object is a SerializationException, for reads and writes alike")
        func notAnObject() async throws {
            try await withLedgerApp { client in
                let bodies: [(String, String, [UInt8])] = [
                    ("broken JSON", "CreateUser", Array(#"{"CollectionId": people, "UserId": "bob"}"#.utf8)),
                    ("truncated", "CreateUser", Array(#"{"CollectionId": "people", "UserId": "bo"#.utf8)),
                    ("trailing garbage", "ListUsers", Array(#"{"CollectionId": "people"} }"#.utf8)),
                    ("an array", "CreateUser", Array(#"[{"CollectionId": "people", "UserId": "bob"}]"#.utf8)),
                    ("a number", "DescribeCollection", Array("42".utf8)),
                    ("a string", "CreateCollection", Array(#""people""#.utf8)),
                    ("null", "ListUsers", Array("null".utf8)),
                    ("NaN", "AssociateFaces", Array(#"{"CollectionId": "people", "UserId": "a", "FaceIds": [], "UserMatchThreshold": NaN}"#.utf8)),
                    ("not UTF-8", "CreateUser", Array(#"{"CollectionId": "people", "UserId": ""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)),
                ]
                for (name, operation, body) in bodies {
                    let reply = try await client.send(target: Target.rekognition(operation), body: body)
                    expectError(reply, 400, "SerializationException", Self.notAnObject, "\(name)")
                }
            }
        }

        @Test("an empty body is an empty object; members the operation does not have are ignored")
        func emptyBodyAndUnknownMembers() async throws {
            try await withLedgerApp { client in
                expectInvalidParameter(
                    try await client.send(target: Target.rekognition("ListUsers"), body: []),
                    "1 validation error detected: Value null at 'collectionId' failed to satisfy constraint: Member must not be null")
                try expectSuccess(try await client.send(target: Target.rekognition("ListCollections"), body: []))
                try expectSuccess(try await client.call(Target.rekognition("CreateCollection"), #"{"CollectionId":"people","Padding":"xxx"}"#))
            }
        }

        @Test("a member of the wrong JSON type is named, with the type it must have")
        func wrongTypes() async throws {
            try await withLedgerApp { client in
                let cases: [(String, String, String)] = [
                    ("CreateUser", #"{"CollectionId":"people","UserId":42}"#, "Value at 'UserId' must be of type string"),
                    ("DescribeCollection", #"{"CollectionId":{"Name":"people"}}"#, "Value at 'CollectionId' must be of type string"),
                    ("ListUsers", #"{"CollectionId":"people","MaxResults":true}"#, "Value at 'MaxResults' must be of type integer"),
                    ("ListUsers", #"{"CollectionId":"people","MaxResults":"x"}"#, "Value at 'MaxResults' must be of type integer"),
                    ("AssociateFaces", #"{"CollectionId":"people","UserId":"a","FaceIds":"x"}"#, "Value at 'FaceIds' must be of type list"),
                    (
                        "AssociateFaces", #"{"CollectionId":"people","UserId":"a","FaceIds":[],"UserMatchThreshold":"90"}"#,
                        "Value at 'UserMatchThreshold' must be of type number"
                    ),
                    ("DisassociateFaces", #"{"CollectionId":"people","UserId":"a","FaceIds":[1]}"#, "Value at 'FaceIds.1' must be of type string"),
                    ("CreateCollection", #"{"CollectionId":"tagged","Tags":{"team":7}}"#, "Value at 'Tags.team' must be of type string"),
                ]
                for (operation, body, message) in cases {
                    expectInvalidParameter(try await client.call(Target.rekognition(operation), body), message, "\(operation) \(body)")
                }
                expectInvalidParameter(
                    try await client.call(Target.faceLedger("ImportFaces"), #"{"CollectionId":"people","Faces":{"Embedding":[1,0]}}"#),
                    "Value at 'Faces' must be of type list")
                expectInvalidParameter(
                    try await client.call(Target.faceLedger("ImportFaces"), #"{"CollectionId":"people","Faces":[{"Embedding":[0.5,null]}]}"#),
                    "Value null at 'Faces.1.Embedding.2' must be of type number")
            }
        }

        @Test("a number that does not fit its member is named with its literal")
        func unfitNumbers() async throws {
            try await withLedgerApp { client in
                expectInvalidParameter(
                    try await client.call(Target.rekognition("ListUsers"), #"{"CollectionId":"people","MaxResults":2.5}"#),
                    "Value '2.5' at 'MaxResults' does not fit the member's number type")
                expectInvalidParameter(
                    try await client.call(Target.rekognition("ListUsers"), #"{"CollectionId":"people","MaxResults":1e30}"#),
                    "Value '1e30' at 'MaxResults' does not fit the member's number type")
                expectInvalidParameter(
                    try await client.call(
                        Target.rekognition("SearchFaces"),
                        #"{"CollectionId":"people","FaceId":"00000000-0000-4000-8000-000000000001","#
                            + #""MaxFaces":9223372036854775808}"#),
                    "Value '9223372036854775808' at 'MaxFaces' does not fit the member's number type")
                expectInvalidParameter(
                    try await client.call(
                        Target.faceLedger("ImportFaces"),
                        #"{"CollectionId":"people","Faces":[{"Embedding":[0.5,0.5]},{"Embedding":[0.5,1e400]}]}"#),
                    "Value '1e400' at 'Faces.2.Embedding.2' does not fit the member's number type")
            }
        }

        @Test("U+0000 and unpaired surrogates are refused by member, never echoed")
        func unstorableStrings() async throws {
            try await withLedgerApp { client in
                expectInvalidParameter(
                    try await client.call(Target.rekognition("CreateUser"), #"{"CollectionId":"people","UserId":"bo\u0000b"}"#),
                    "Value at 'UserId' must not contain the character U+0000")
                expectInvalidParameter(
                    try await client.call(Target.rekognition("ListUsers"), #"{"CollectionId":"peo\u0000ple"}"#),
                    "Value at 'CollectionId' must not contain the character U+0000")
                expectInvalidParameter(
                    try await client.call(Target.rekognition("DeleteUser"), #"{"CollectionId":"people","UserId":"alice","X\u0000":1}"#),
                    "A member name of the request is invalid: it must not contain the character U+0000")
                expectInvalidParameter(
                    try await client.call(
                        Target.faceLedger("ImportFaces"),
                        #"{"CollectionId":"people","Faces":[{"Embedding":[1,0]},"#
                            + #"{"ExternalImageId":"a\u0000","Embedding":[0,1]}]}"#),
                    "Value at 'Faces.2.ExternalImageId' must not contain the character U+0000")
                expectInvalidParameter(
                    try await client.call(Target.rekognition("AssociateFaces"), #"{"CollectionId":"people","UserId":"a","FaceIds":["\u0000"]}"#),
                    "Value at 'FaceIds.1' must not contain the character U+0000")
                expectInvalidParameter(
                    try await client.call(Target.rekognition("CreateUser"), #"{"CollectionId":"people","UserId":"\ud800x"}"#),
                    "Value at 'UserId' must not contain an unpaired UTF-16 surrogate")
                // An auditor's write is refused for its body before its role.
                expectInvalidParameter(
                    try await client.call(Target.rekognition("CreateUser"), #"{"CollectionId":"people","UserId":"\u0000"}"#, as: TestKeys.auditor),
                    "Value at 'UserId' must not contain the character U+0000")
            }
        }
    }
}
