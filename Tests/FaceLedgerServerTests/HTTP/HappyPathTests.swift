import Foundation
import LedgerDomain
import Testing

extension HTTPTests {
    /// One user's way in, as an SDK drives it: the shapes of the answers, member by member.
    @Suite("The happy path")
    struct HappyPathTests {
        static let first = "00000000-0000-4000-8000-000000000001"
        static let second = "00000000-0000-4000-8000-000000000002"

        @Test("CreateCollection, CreateUser, ImportFaces, AssociateFaces, then ListUsers and ListFaces")
        func enrolment() async throws {
            try await withLedgerApp { client in
                let created = try expectSuccess(try await client.call(Target.rekognition("CreateCollection"), #"{"CollectionId":"people"}"#))
                #expect(
                    created
                        == .object([
                            "StatusCode": .integer(200),
                            "CollectionArn": .string("arn:aws:rekognition:\(LedgerTestClient.region):000000000000:collection/people"),
                            "FaceModelVersion": .string("7.0"),
                        ]))
                #expect(created["StatusCode"]?.isFloat == false)

                let user = try expectSuccess(
                    try await client.call(
                        Target.rekognition("CreateUser"),
                        #"{"CollectionId":"people","UserId":"bob","ClientRequestToken":"enrol-bob"}"#))
                #expect(user == .object([:]))

                let imported = try expectSuccess(
                    try await client.call(
                        Target.faceLedger("ImportFaces"),
                        #"""
                        {"CollectionId":"people","Faces":[
                          {"FaceId":"\#(Self.first)","ExternalImageId":"passport","Embedding":[1,0,0]},
                          {"FaceId":"\#(Self.second)","Embedding":[0.9,0.1,0]}]}
                        """#))
                #expect(imported.objectValue.keys.sorted() == ["FaceRecords"])
                let records = imported["FaceRecords"]?.arrayValue.map { $0["Face"] ?? .null } ?? []
                try #require(records.count == 2)
                #expect(
                    records.map { $0.objectValue.keys.sorted() }
                        == [["Confidence", "ExternalImageId", "FaceId", "ImageId"], ["Confidence", "FaceId", "ImageId"]])
                #expect(records.map { $0["FaceId"] } == [.string(Self.first), .string(Self.second)])
                #expect(records[0]["ExternalImageId"] == .string("passport"))
                #expect(records.allSatisfy { $0["Confidence"] == .number(100) && $0["Confidence"]?.isFloat == true })
                let imageIds = records.compactMap { $0["ImageId"]?.stringValue }
                #expect(imageIds.count == 2 && imageIds.allSatisfy { UUID(uuidString: $0) != nil && $0 == $0.lowercased() })

                let associated = try expectSuccess(
                    try await client.call(
                        Target.rekognition("AssociateFaces"),
                        #"{"CollectionId":"people","UserId":"bob","FaceIds":["\#(Self.first)","\#(Self.second)"],"UserMatchThreshold":80}"#))
                #expect(
                    associated
                        == .object([
                            "AssociatedFaces": .array([.object(["FaceId": .string(Self.first)]), .object(["FaceId": .string(Self.second)])]),
                            "UnsuccessfulFaceAssociations": .array([]),
                            "UserStatus": .string("UPDATING"),
                        ]))

                // Reads wait for the projector: what was just written is listed.
                let users = try expectSuccess(try await client.call(Target.rekognition("ListUsers"), #"{"CollectionId":"people"}"#))
                #expect(users == .object(["Users": .array([.object(["UserId": .string("bob"), "UserStatus": .string("ACTIVE")])])]))

                let faces = try expectSuccess(try await client.call(Target.rekognition("ListFaces"), #"{"CollectionId":"people","UserId":"bob"}"#))
                #expect(faces.objectValue.keys.sorted() == ["FaceModelVersion", "Faces"])
                #expect(faces["FaceModelVersion"] == .string("7.0"))
                let listed = faces["Faces"]?.arrayValue ?? []
                #expect(
                    listed == [
                        .object([
                            "FaceId": .string(Self.first), "ImageId": .string(imageIds[0]), "ExternalImageId": .string("passport"),
                            "Confidence": .number(100), "IndexFacesModelVersion": .string("7.0"), "UserId": .string("bob"),
                        ]),
                        .object([
                            "FaceId": .string(Self.second), "ImageId": .string(imageIds[1]), "Confidence": .number(100),
                            "IndexFacesModelVersion": .string("7.0"), "UserId": .string("bob"),
                        ]),
                    ])

                let described = try expectSuccess(try await client.call(Target.rekognition("DescribeCollection"), #"{"CollectionId":"people"}"#))
                #expect(described["FaceCount"] == .integer(2) && described["UserCount"] == .integer(1))
                #expect(described["CreationTimestamp"]?.isFloat == true)
            }
        }
    }
}
