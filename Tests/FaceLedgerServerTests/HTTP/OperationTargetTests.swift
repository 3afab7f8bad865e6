import Testing

extension HTTPTests {
    /// `X-Amz-Target` picks the operation: Rekognition's under `RekognitionService.`, FaceLedger's own under
    /// `FaceLedger.`, anything else UnknownOperationException. The content type is not checked.
    @Suite("Operation targets and content type")
    struct OperationTargetTests {
        static let person = Array(#"{"CollectionId":"people","UserId":"bob"}"#.utf8)

        @Test("a missing or empty target, and every target FaceLedger does not serve, is an UnknownOperationException")
        func unknownTargets() async throws {
            try await withLedgerApp { client in
                expectError(
                    try await client.send(target: nil, body: Self.person), 400, "UnknownOperationException",
                    "Missing X-Amz-Target header")
                expectError(
                    try await client.send(target: "", body: Self.person), 400, "UnknownOperationException",
                    "Missing X-Amz-Target header")
                let unknown = [
                    Target.rekognition("DetectFaces"), Target.rekognition("Frobnicate"), Target.faceLedger("Frobnicate"),
                    Target.faceLedger("CreateUser"),  // a Rekognition operation under FaceLedger's prefix
                    Target.rekognition("ImportFaces"),  // and FaceLedger's under Rekognition's
                    "rekognitionservice.CreateUser",
                ]
                for target in unknown {
                    expectError(
                        try await client.send(target: target, body: Self.person), 400, "UnknownOperationException",
                        "FaceLedger does not implement the operation \(target)", "\(target)")
                }
                // The message shows at most 128 characters of the target.
                let long = Target.rekognition(String(repeating: "X", count: 300))
                expectError(
                    try await client.send(target: long, body: Self.person), 400, "UnknownOperationException",
                    "FaceLedger does not implement the operation \(long.prefix(128))")
            }
        }

        @Test("IndexFaces is served only in upstream mode: the embedded engine has no image model")
        func indexFacesWithoutUpstream() async throws {
            try await withLedgerApp { client in
                expectInvalidParameter(
                    try await client.call(Target.rekognition("IndexFaces"), #"{"CollectionId":"people","Image":{"Bytes":"aGVsbG8="}}"#),
                    "The embedded engine has no image model: add faces with FaceLedger.ImportFaces and their embeddings")
            }
        }

        @Test("the content type is not checked: a body sent as text/plain is served like one sent as JSON")
        func contentTypeIsNotChecked() async throws {
            try await withLedgerApp { client in
                let created = try await client.send(
                    target: Target.rekognition("CreateCollection"),
                    body: Array(#"{"CollectionId":"people"}"#.utf8), contentType: "text/plain")
                try expectSuccess(created)
                let listed = try expectSuccess(
                    try await client.send(
                        target: Target.rekognition("ListCollections"), body: Array("{}".utf8),
                        contentType: "application/json"))
                #expect(listed["CollectionIds"] == .array([.string("people")]))
            }
        }
    }
}
