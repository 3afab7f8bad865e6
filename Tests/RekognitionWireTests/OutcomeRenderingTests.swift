import Foundation
import LedgerDomain
import RekognitionWire
import Testing

@Suite("The wire: outcomes rendered in Rekognition's shapes, and read back from an upstream's answer")
struct OutcomeRenderingTests {
    private func text(_ value: JSONValue) -> String { String(decoding: value.data, as: UTF8.self) }

    @Test("each outcome renders as the Rekognition model's response, refused faces with Rekognition's reasons")
    func rendering() throws {
        let refused = [
            RefusedFace(faceId: "a", reason: .faceNotFound),
            RefusedFace(faceId: "b", reason: .associatedToADifferentUser, ownerUserId: "v"),
            RefusedFace(faceId: "c", reason: .lowMatchConfidence, confidence: 12.5),
            RefusedFace(faceId: "d", reason: .userFaceLimit),
        ]
        let associated = FaceChanges(changed: ["e"], refused: refused)
        #expect(
            text(try JSONValue(rendering: .facesAssociated(associated, userStatus: .updating))) == """
                {"AssociatedFaces":[{"FaceId":"e"}],"UnsuccessfulFaceAssociations":[{"FaceId":"a","Reasons":["FACE_NOT_FOUND"]},\
                {"FaceId":"b","Reasons":["ASSOCIATED_TO_A_DIFFERENT_USER"],"UserId":"v"},\
                {"Confidence":12.5,"FaceId":"c","Reasons":["LOW_MATCH_CONFIDENCE"]},{"FaceId":"d","Reasons":[]}],"UserStatus":"UPDATING"}
                """)
        // DeleteFaces names a face that belongs to a user differently, and leaves out an empty DeletedFaces.
        #expect(
            text(try JSONValue(rendering: .facesDeleted(FaceChanges(refused: [refused[1]])))) == """
                {"UnsuccessfulFaceDeletions":[{"FaceId":"b","Reasons":["ASSOCIATED_TO_AN_EXISTING_USER"],"UserId":"v"}]}
                """)
        #expect(
            text(try JSONValue(rendering: .collectionCreated(arn: "arn:c")))
                == #"{"CollectionArn":"arn:c","FaceModelVersion":"7.0","StatusCode":200}"#)
        #expect(text(try JSONValue(rendering: .collectionDeleted)) == #"{"StatusCode":200}"#)
        #expect(text(try JSONValue(rendering: .userCreated)) == "{}")
        #expect(
            text(try JSONValue(rendering: .facesImported([FaceImported(faceId: "f", imageId: "i", confidence: 100)])))
                == #"{"FaceRecords":[{"Face":{"Confidence":100.0,"FaceId":"f","ImageId":"i"}}]}"#)
    }

    @Test("an upstream's answer reads back as the outcome it renders")
    func roundTrip() throws {
        let changes = FaceChanges(
            changed: ["e", "f"],
            refused: [
                RefusedFace(faceId: "a", reason: .faceNotFound),
                RefusedFace(faceId: "b", reason: .associatedToADifferentUser, ownerUserId: "v"),
            ])
        let cases: [(LedgerCommand, CommandOutcome)] = [
            (.associateFaces(collectionId: "c", userId: "u", faceIds: [], userMatchThreshold: 75), .facesAssociated(changes, userStatus: .updating)),
            (.disassociateFaces(collectionId: "c", userId: "u", faceIds: []), .facesDisassociated(changes, userStatus: .active)),
            (.deleteFaces(collectionId: "c", faceIds: []), .facesDeleted(FaceChanges(changed: ["e"], refused: changes.refused))),
            (.createCollection(collectionId: "c", arn: "x"), .collectionCreated(arn: "arn:c")),
            (
                .importFaces(collectionId: "c", faces: []),
                .facesImported([FaceImported(faceId: "f", externalImageId: "x", imageId: "i", confidence: 99)])
            ),
        ]
        for (command, outcome) in cases {
            #expect(CommandOutcome(upstreamAnswer: try JSONValue(rendering: outcome), to: command) == outcome)
        }
    }

    @Test("a face past the user's limit comes back without reasons, and is read as the limit")
    func limitWithoutReasons() throws {
        let answer = try JSONValue(
            parsing: Data(#"{"AssociatedFaces":[],"UnsuccessfulFaceAssociations":[{"FaceId":"d","Reasons":[]}],"UserStatus":"ACTIVE"}"#.utf8))
        let outcome = CommandOutcome(
            upstreamAnswer: answer, to: .associateFaces(collectionId: "c", userId: "u", faceIds: ["d"], userMatchThreshold: 75))
        #expect(outcome == .facesAssociated(FaceChanges(refused: [RefusedFace(faceId: "d", reason: .userFaceLimit)]), userStatus: .active))
    }

    @Test("refusals are answered with their AWS code, status and one message each; a recorded error answers again as it was")
    func refusals() {
        #expect(LedgerError(refusal: .collectionNotFound("c")) == LedgerError(.resourceNotFound, "The collection id: c does not exist"))
        #expect(LedgerError(refusal: .userAlreadyExists("u")).code == .conflict)
        #expect(LedgerError(refusal: .userFaceLimit(userId: "u")).code.httpStatus == 400)
        #expect(LedgerError(refusal: .userFaceLimit(userId: "u")).code == .serviceQuotaExceeded)
        #expect(LedgerError(refusal: .invalidFaces("Faces[0].Embedding is odd")) == .invalidParameter("Faces[0].Embedding is odd"))
        let error = LedgerError(.idempotentParameterMismatch, "no")
        #expect(LedgerError(recorded: error.recorded) == error)
        #expect(ErrorCode.serviceUnavailable.httpStatus == 503)
    }
}
