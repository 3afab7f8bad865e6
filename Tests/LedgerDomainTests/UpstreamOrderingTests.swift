import Foundation
import LedgerDomain
import Testing

@Suite("Upstream mode: what a command touches, what the ledger never saw, what drifted")
struct UpstreamOrderingTests {
    private func json(_ text: String) throws -> JSONValue { try JSONValue(parsing: Data(text.utf8)) }

    @Test("keys: collection-wide commands share one key; users and faces as named, with the owners and faces they reach")
    func keys() {
        var given = Given.collection(users: ["u", "v"], faces: [face(1): [1, 0], face(2): [0, 1]])
        _ = given.run(.associateFaces(collectionId: "c", userId: "v", faceIds: [face(2)], userMatchThreshold: 0))
        let state = given.state
        #expect(state.upstreamKeys(for: .createCollection(collectionId: "c", arn: "")) == [LedgerState.collectionKey])
        #expect(state.upstreamKeys(for: .deleteCollection(collectionId: "c")) == [LedgerState.collectionKey])
        #expect(state.upstreamKeys(for: .createUser(collectionId: "c", userId: "u")) == ["user:u"])
        // Deleting v frees its face: a command on that face waits for it.
        #expect(state.upstreamKeys(for: .deleteUser(collectionId: "c", userId: "v")) == ["user:v", "face:" + face(2)])
        // Associating v's face with u reaches v too (its face count changes).
        #expect(
            state.upstreamKeys(for: .associateFaces(collectionId: "c", userId: "u", faceIds: [face(1), face(2)], userMatchThreshold: 75))
                == ["user:u", "face:" + face(1), "face:" + face(2), "user:v"])
        #expect(state.upstreamKeys(for: .deleteFaces(collectionId: "c", faceIds: [face(2)])) == ["face:" + face(2), "user:v"])
        #expect(state.upstreamKeys(for: .indexFaces(collectionId: "c", externalImageId: "photo")) == ["image:photo"])
    }

    @Test("an answer about a collection, user or face the ledger never saw records them as observed first, so it folds")
    func observedFirst() throws {
        var given = Given()
        let answer = try json(#"{"AssociatedFaces": [{"FaceId": "\#(face(7))"}], "UnsuccessfulFaceAssociations": [], "UserStatus": "UPDATING"}"#)
        let events = given.state.mirror(
            .associateFaces(collectionId: "c", userId: "u", faceIds: [face(7)], userMatchThreshold: 75),
            answer: answer)
        #expect(
            events == [
                .collectionCreated(CollectionCreated(collectionId: "c", arn: "")),
                .userCreated(UserCreated(userId: "u")),
                .faceImported(FaceImported(faceId: face(7), imageId: "", confidence: 0), embedding: []),
                .faceAssociated(FaceAssociated(faceId: face(7), userId: "u")),
            ])
        given.apply(events)
        #expect(given.state.collections["c"]?.users["u"]?.faceIds == [face(7)])
    }

    @Test("an IndexFaces answer that names a face the ledger has keeps that face's record and user")
    func indexKnownFace() throws {
        var given = Given.collection(users: ["u"], faces: [face(1): [1, 0]])
        _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 0))
        let answer = try json(#"{"FaceRecords": [{"Face": {"FaceId": "\#(face(1))"}}, {"Face": {"FaceId": "\#(face(2))", "ExternalImageId": "p"}}]}"#)
        #expect(
            given.state.mirror(.indexFaces(collectionId: "c", externalImageId: "p"), answer: answer) == [
                .faceImported(FaceImported(faceId: face(2), externalImageId: "p", imageId: "", confidence: 0), embedding: [])
            ])
    }

    @Test("adoption: the events that bring the ledger in line with the upstream, and none when they agree")
    func adoption() {
        var given = Given.collection(users: ["u1", "u2"], faces: [face(1): [1, 0], face(2): [0, 1], face(3): [1, 1]])
        _ = given.run(.associateFaces(collectionId: "c", userId: "u1", faceIds: [face(1)], userMatchThreshold: 0))
        _ = given.run(.associateFaces(collectionId: "c", userId: "u2", faceIds: [face(3)], userMatchThreshold: 0))
        // Upstream: u2 deleted (its face freed), face 2 associated with u1, face 3 deleted, face 9 and user u3 new.
        let observed = UpstreamObservation(users: ["u1", "u3"], faces: [face(1): "u1", face(2): "u1", face(9): nil])
        let events = given.state.adoption(of: observed, in: "c")
        #expect(
            events == [
                .faceImported(FaceImported(faceId: face(9), imageId: "", confidence: 0), embedding: []),
                .userCreated(UserCreated(userId: "u3")),
                .faceDisassociated(FaceDisassociated(faceId: face(3), userId: "u2")),
                .faceAssociated(FaceAssociated(faceId: face(2), userId: "u1")),
                .userDeleted(UserDeleted(userId: "u2")),
                .faceDeleted(FaceDeleted(faceId: face(3))),
            ])
        given.apply(events)
        #expect(given.state.adoption(of: observed, in: "c").isEmpty)
        #expect(given.state.collections["c"]?.users["u1"]?.faceIds == [face(1), face(2)])
    }

    @Test("a user's vector leaves out faces without biometrics, whichever comes first")
    func vectorWithoutForgottenFaces() {
        #expect(Similarity.userVector([[], [3, 4]]) == [0.6, 0.8])
        #expect(Similarity.userVector([[], []]) == nil)
    }
}
