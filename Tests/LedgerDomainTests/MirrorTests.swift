import Foundation
import LedgerDomain
import Testing

@Suite("Upstream mode: mirroring what the upstream answered")
struct MirrorTests {
    private func json(_ text: String) throws -> JSONValue { try JSONValue(parsing: Data(text.utf8)) }

    @Test("AssociateFaces: associated faces follow the upstream, refusals are recorded with their reasons")
    func associate() throws {
        var given = Given.collection(users: ["u", "v"], faces: [face(1): [1, 0], face(2): [0, 1], face(3): [1, 1], face(4): [1, 2]])
        _ = given.run(.associateFaces(collectionId: "c", userId: "v", faceIds: [face(2)], userMatchThreshold: 0))
        _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(4)], userMatchThreshold: 0))
        let command = LedgerCommand.associateFaces(
            collectionId: "c", userId: "u",
            faceIds: [face(1), face(2), face(3), face(4), face(9)], userMatchThreshold: 75)
        // The upstream associated 1 and 2 (2 was v's in the ledger: the ledger was behind), refused 3
        // for low confidence and 9 as unknown, and left 4 (already u's) out of both lists.
        let answer = try json(
            """
            {"AssociatedFaces": [{"FaceId": "\(face(1))"}, {"FaceId": "\(face(2))"}],
             "UnsuccessfulFaceAssociations": [
                {"FaceId": "\(face(3))", "Confidence": 12.5, "Reasons": ["LOW_MATCH_CONFIDENCE"]},
                {"FaceId": "\(face(9))", "Reasons": ["FACE_NOT_FOUND"]}],
             "UserStatus": "UPDATING"}
            """)
        let events = given.state.mirror(command, answer: answer)
        #expect(
            events == [
                .faceAssociated(FaceAssociated(faceId: face(1), userId: "u")),
                .faceDisassociated(FaceDisassociated(faceId: face(2), userId: "v")),
                .faceAssociated(FaceAssociated(faceId: face(2), userId: "u")),
                .faceAttempted(FaceAttempted(faceId: face(3), userId: "u", outcome: .lowMatchConfidence, confidence: 12.5)),
                .faceAttempted(FaceAttempted(faceId: face(4), userId: "u", outcome: .unchanged)),
                .faceAttempted(FaceAttempted(faceId: face(9), userId: "u", outcome: .faceNotFound)),
            ])
        given.apply(events)
        #expect(given.state.collections["c"]?.users["u"]?.faceIds == [face(4), face(1), face(2)])
        #expect(given.state.collections["c"]?.users["v"]?.faceIds == [])
    }

    @Test("DisassociateFaces and DeleteFaces: what the upstream did, whatever the ledger thought")
    func disassociateAndDelete() throws {
        var given = Given.collection(users: ["u"], faces: [face(1): [1, 0], face(2): [0, 1], face(3): [1, 1]])
        _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1), face(2)], userMatchThreshold: 0))
        let disassociated = given.state.mirror(
            .disassociateFaces(collectionId: "c", userId: "u", faceIds: [face(1), face(3)]),
            answer: try json(#"{"DisassociatedFaces": [{"FaceId": "\#(face(1))"}], "UnsuccessfulFaceDisassociations": [], "UserStatus": "UPDATING"}"#)
        )
        #expect(
            disassociated == [
                .faceDisassociated(FaceDisassociated(faceId: face(1), userId: "u")),
                .faceAttempted(FaceAttempted(faceId: face(3), userId: "u", outcome: .unchanged)),
            ])
        given.apply(disassociated)
        // The upstream deleted face 2 although the ledger had it with u (a change behind its back).
        let deleted = given.state.mirror(
            .deleteFaces(collectionId: "c", faceIds: [face(2), face(9)]),
            answer: try json(
                #"{"DeletedFaces": ["\#(face(2))"], "UnsuccessfulFaceDeletions": [{"FaceId": "\#(face(9))", "Reasons": ["FACE_NOT_FOUND"]}]}"#))
        #expect(
            deleted == [
                .faceDisassociated(FaceDisassociated(faceId: face(2), userId: "u")),
                .faceDeleted(FaceDeleted(faceId: face(2))),
                .faceAttempted(FaceAttempted(faceId: face(9), outcome: .faceNotFound)),
            ])
        given.apply(deleted)
        #expect(given.state.collections["c"]?.users["u"]?.faceIds == [])
    }

    @Test("IndexFaces: the upstream's faces enter without embeddings and fix no dimension; CreateCollection keeps its ARN")
    func indexAndCreate() throws {
        var given = Given()
        given.apply(
            given.state.mirror(
                .createCollection(collectionId: "c", arn: "local-arn"),
                answer: try json(#"{"StatusCode": 200, "CollectionArn": "aws:rekognition:eu-west-1:1:collection/c", "FaceModelVersion": "7.0"}"#)))
        #expect(given.state.collections["c"]?.arn == "aws:rekognition:eu-west-1:1:collection/c")
        let indexed = given.state.mirror(
            .indexFaces(collectionId: "c", externalImageId: "img"),
            answer: try json(
                """
                {"FaceRecords": [{"Face": {"FaceId": "\(face(1))", "ImageId": "i1", "ExternalImageId": "img", "Confidence": 99.5,
                                           "BoundingBox": {"Width": 0.5}}, "FaceDetail": {}}], "UnindexedFaces": []}
                """))
        #expect(indexed == [.faceImported(FaceImported(faceId: face(1), externalImageId: "img", imageId: "i1", confidence: 99.5), embedding: [])])
        given.apply(indexed)
        #expect(given.state.collections["c"]?.faces[face(1)] != nil)
        #expect(given.state.collections["c"]?.dimension == nil)
    }

    @Test("DeleteUser: the user's faces are disassociated with it, as upstream")
    func deleteUser() {
        var given = Given.collection(users: ["u"], faces: [face(1): [1, 0]])
        _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 0))
        #expect(
            given.state.mirror(.deleteUser(collectionId: "c", userId: "u"), answer: .object([:])) == [
                .faceDisassociated(FaceDisassociated(faceId: face(1), userId: "u")), .userDeleted(UserDeleted(userId: "u")),
            ])
    }
}
