import Foundation
import LedgerDomain
import RekognitionWire
import Testing

@Suite("CreateCollection keeps its tags; DeleteFaces leaves out an empty DeletedFaces")
struct CollectionTagsTests {
    @Test("the tags are on the CollectionCreated event and in the collection")
    func tagsKept() throws {
        var given = Given()
        let tags = ["team": "faces", "cost-center": "42", "empty": ""]
        let decision = given.run(.createCollection(collectionId: "c", arn: "arn", tags: tags))
        #expect(decision.events == [.collectionCreated(CollectionCreated(collectionId: "c", arn: "arn", tags: tags))])
        #expect(given.state.collections["c"]?.tags == tags)
        let encoded = try decision.events[0].encoded()
        #expect(encoded.data == #"{"arn":"arn","collectionId":"c","tags":{"cost-center":"42","empty":"","team":"faces"}}"#)
        #expect(
            try LedgerEvent.decode(type: encoded.type, schemaVersion: encoded.schemaVersion, data: encoded.data, embedding: nil)
                == decision.events[0])
    }

    @Test("a collection without tags is recorded as before, and events from before tags still read")
    func oldEvents() throws {
        let event = LedgerEvent.collectionCreated(CollectionCreated(collectionId: "c", arn: "arn"))
        #expect(try event.encoded().data == #"{"arn":"arn","collectionId":"c"}"#)
        let old = try LedgerEvent.decode(type: "CollectionCreated", schemaVersion: 1, data: #"{"arn":"arn","collectionId":"c"}"#, embedding: nil)
        #expect(old == event)
        var state = LedgerState()
        state.evolve(old, EventContext(collectionId: "c", position: 1, recordedAt: Date()))
        #expect(state.collections["c"]?.tags == [:])
    }

    @Test("DeleteFaces that deletes nothing has no DeletedFaces member (the model's min 1)")
    func noDeletedFaces() throws {
        var given = Given.collection(users: ["u"], faces: [face(1): [1, 0]])
        _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 75))
        let decision = given.run(.deleteFaces(collectionId: "c", faceIds: [face(1), face(2)]))
        guard case .success(let json) = decision.rendered, case .object(let members) = json else {
            Issue.record("rejected")
            return
        }
        #expect(members["DeletedFaces"] == nil)
        #expect(members["UnsuccessfulFaceDeletions"].map { if case .array(let a) = $0 { a.count } else { -1 } } == 2)
    }
}
