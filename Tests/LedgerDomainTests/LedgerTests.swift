import Foundation
import LedgerDomain
import RekognitionWire
import Testing

@Suite("The other commands, and the event codec")
struct LedgerTests {
    @Test("DeleteFaces never deletes a face that belongs to a user")
    func deleteFaces() throws {
        var given = Given.collection(users: ["u"], faces: [face(1): [1, 0], face(2): [0, 1]])
        _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 75))
        let decision = given.run(.deleteFaces(collectionId: "c", faceIds: [face(1), face(2), face(3)]))
        guard case .success(let json) = decision.rendered else {
            Issue.record("rejected")
            return
        }
        let response = try JSONDecoder().decode(DeleteFacesResponse.self, from: json.data)
        #expect(response.DeletedFaces == [face(2)])
        #expect(
            response.UnsuccessfulFaceDeletions == [
                UnsuccessfulFace(FaceId: face(1), UserId: "u", Reasons: ["ASSOCIATED_TO_AN_EXISTING_USER"]),
                UnsuccessfulFace(FaceId: face(3), Reasons: ["FACE_NOT_FOUND"]),
            ])
        #expect(given.state.collections["c"]?.faces.keys.sorted() == [face(1)])
    }

    @Test("DeleteUser disassociates the user's faces, then deletes the user")
    func deleteUser() {
        var given = Given.collection(users: ["u"], faces: [face(1): [1, 0]])
        _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 75))
        let decision = given.run(.deleteUser(collectionId: "c", userId: "u"))
        #expect(decision.events == [.faceDisassociated(FaceDisassociated(faceId: face(1), userId: "u")), .userDeleted(UserDeleted(userId: "u"))])
        #expect(given.state.collections["c"]?.users["u"] == nil)
        #expect(given.state.collections["c"]?.faces[face(1)]?.userId == nil)
        #expect(given.run(.deleteUser(collectionId: "c", userId: "u")).error?.code == .resourceNotFound)
    }

    @Test("DisassociateFaces mirrors AssociateFaces")
    func disassociate() throws {
        var given = Given.collection(users: ["u", "v"], faces: [face(1): [1, 0], face(2): [0, 1], face(3): [1, 1]])
        _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 75))
        _ = given.run(.associateFaces(collectionId: "c", userId: "v", faceIds: [face(2)], userMatchThreshold: 75))
        let decision = given.run(.disassociateFaces(collectionId: "c", userId: "u", faceIds: [face(1), face(2), face(3), face(9)]))
        guard case .success(let json) = decision.rendered else {
            Issue.record("rejected")
            return
        }
        let response = try JSONDecoder().decode(DisassociateFacesResponse.self, from: json.data)
        #expect(response.DisassociatedFaces.map(\.FaceId) == [face(1)])
        #expect(
            response.UnsuccessfulFaceDisassociations == [
                UnsuccessfulFace(FaceId: face(2), UserId: "v", Reasons: ["ASSOCIATED_TO_A_DIFFERENT_USER"]),
                UnsuccessfulFace(FaceId: face(9), Reasons: ["FACE_NOT_FOUND"]),
            ])
        #expect(response.UserStatus == .updating)
    }

    @Test("collections and users: already exists, conflict, not found")
    func lifecycle() {
        var given = Given()
        #expect(given.run(.createUser(collectionId: "c", userId: "u")).error?.code == .resourceNotFound)
        #expect(given.run(.createCollection(collectionId: "c", arn: "arn")).error == nil)
        #expect(given.run(.createCollection(collectionId: "c", arn: "arn")).error?.code == .resourceAlreadyExists)
        #expect(given.run(.createUser(collectionId: "c", userId: "u")).error == nil)
        #expect(given.run(.createUser(collectionId: "c", userId: "u")).error?.code == .conflict)
        #expect(given.run(.deleteCollection(collectionId: "c")).error == nil)
        #expect(given.state.collections.isEmpty)
        #expect(given.run(.deleteCollection(collectionId: "c")).error?.code == .resourceNotFound)
    }

    @Test("ImportFaces: dimensions, finite non-zero embeddings, new face ids")
    func importFaces() {
        var given = Given.collection()
        func importing(_ id: String, _ embedding: [Float], given: Bool = true) -> LedgerCommand {
            .importFaces(
                collectionId: "c", faces: [FaceToImport(faceId: id, faceIdGiven: given, externalImageId: nil, imageId: "i", embedding: embedding)])
        }
        #expect(given.run(importing(face(1), [1, 2, 3])).error == nil)
        #expect(given.state.collections["c"]?.dimension == 3)
        #expect(given.run(importing(face(2), [1, 2])).error?.code == .invalidParameter)  // other dimension
        #expect(given.run(importing(face(1), [1, 2, 3])).error?.code == .invalidParameter)  // exists
        #expect(given.run(importing(face(3), [0, 0, 0])).error?.code == .invalidParameter)  // zero norm
        #expect(given.run(importing(face(4), [1, .nan, 0])).error?.code == .invalidParameter)
        #expect(given.run(importing(face(5), [1])).error?.code == .invalidParameter)  // too short
        #expect(given.state.collections["c"]?.faces.count == 1)
    }

    @Test("every event survives encoding and decoding, embedding included")
    func codec() throws {
        let events: [LedgerEvent] = [
            .commandAccepted(CommandAccepted(request: .object(["CollectionId": .string("c"), "N": .number(1.5)]))),
            .commandSettled(CommandSettled(response: .object([:]), requestHash: "ab")),
            .commandRejected(CommandRejected(request: .null, error: LedgerError(.conflict, "no").recorded)),
            .collectionCreated(CollectionCreated(collectionId: "c", arn: "arn")),
            .collectionDeleted(CollectionDeleted(collectionId: "c")),
            .userCreated(UserCreated(userId: "u")), .userDeleted(UserDeleted(userId: "u")),
            .faceImported(FaceImported(faceId: face(1), externalImageId: "x", imageId: "i", confidence: 100), embedding: [0.25, -1e-7, 3]),
            .faceAssociated(FaceAssociated(faceId: face(1), userId: "u", confidence: 97.5)),
            .faceDisassociated(FaceDisassociated(faceId: face(1), userId: "u")),
            .faceAttempted(FaceAttempted(faceId: face(1), userId: "u", outcome: .lowMatchConfidence, confidence: 12)),
            .faceDeleted(FaceDeleted(faceId: face(1))),
        ]
        for event in events {
            let encoded = try event.encoded()
            #expect(
                try LedgerEvent.decode(
                    type: encoded.type, schemaVersion: encoded.schemaVersion, data: encoded.data,
                    embedding: encoded.embedding) == event)
            #expect(try event.encoded() == encoded)  // canonical: same event, same bytes
        }
        #expect(throws: EventDecodingError.self) { try LedgerEvent.decode(type: "Unknown", schemaVersion: 1, data: "{}", embedding: nil) }
    }
}
