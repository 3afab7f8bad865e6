import Foundation
import LedgerDomain
import Testing

@Suite("Undoing a batch's decisions")
struct StateUndoTests {
    /// Decides and evolves `commands` in order, recording what they overwrite, as the write side does.
    private func decideAll(_ commands: [LedgerCommand], on state: inout LedgerState) -> [StateUndo] {
        var undo: [StateUndo] = []
        for command in commands {
            for event in state.decide(command).events {
                state.evolve(event, EventContext(collectionId: command.collectionId, position: 99, recordedAt: Date()),
                             recordingUndoIn: &undo)
            }
        }
        return undo
    }

    @Test("undoing every kind of change gives back exactly the state before the batch")
    func everyKindOfChange() {
        var given = Given.collection(users: ["u", "v"], faces: [face(1): [1, 0], face(2): [0.9, 0.1], face(3): [0, 1]])
        _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 0))
        let before = given.state
        var state = before
        let undo = decideAll([
            .associateFaces(collectionId: "c", userId: "u", faceIds: [face(2)], userMatchThreshold: 0),
            .disassociateFaces(collectionId: "c", userId: "u", faceIds: [face(1)]),
            .createUser(collectionId: "c", userId: "w"),
            .deleteUser(collectionId: "c", userId: "v"),
            .deleteFaces(collectionId: "c", faceIds: [face(3)]),
            .importFaces(collectionId: "c", faces: [FaceToImport(faceId: face(4), faceIdGiven: true, externalImageId: nil,
                                                                 imageId: "i4", embedding: [0.5, 0.5])]),
            .deleteUser(collectionId: "c", userId: "u"),
            .createCollection(collectionId: "d", arn: "arn:d"),
            .importFaces(collectionId: "d", faces: [FaceToImport(faceId: face(5), faceIdGiven: true, externalImageId: nil,
                                                                 imageId: "i5", embedding: [1, 2, 3])]),
            .deleteCollection(collectionId: "c"),
        ], on: &state)
        #expect(state != before)
        #expect(state.collections["c"] == nil && state.collections["d"]?.dimension == 3)
        state.undo(undo)
        #expect(state == before)
    }

    @Test("a new collection's first face sets its dimension, and undoing it clears the dimension again")
    func dimension() {
        var state = Given.collection().state
        let before = state
        let undo = decideAll([
            .importFaces(collectionId: "c", faces: [FaceToImport(faceId: face(1), faceIdGiven: true, externalImageId: nil,
                                                                 imageId: "i1", embedding: [1, 0, 0])]),
        ], on: &state)
        #expect(state.collections["c"]?.dimension == 3)
        state.undo(undo)
        #expect(state == before && state.collections["c"]?.dimension == nil)
    }

    @Test("commands that change nothing record nothing to undo")
    func nothingToUndo() {
        var state = Given.collection(users: ["u"]).state
        let undo = decideAll([
            .createUser(collectionId: "c", userId: "u"),  // Conflict: no events
            .associateFaces(collectionId: "c", userId: "u", faceIds: [face(9)], userMatchThreshold: 75),  // FACE_NOT_FOUND
        ], on: &state)
        #expect(undo.isEmpty)
    }
}
