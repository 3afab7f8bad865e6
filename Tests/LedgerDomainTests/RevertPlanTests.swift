import Foundation
import LedgerDomain
import Testing

@Suite("Revert plans")
struct RevertPlanTests {
    @Test("faces go back to their owners then; with a principal, only where that principal changed them last")
    func plan() throws {
        var given = Given.collection(users: ["u", "v", "m"], faces: [face(1): [1, 0], face(2): [0, 1], face(3): [1, 1]])
        _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1), face(2)], userMatchThreshold: 0))
        let then = try #require(given.state.collections["c"])
        var changes: [(event: LedgerEvent, principal: String)] = []
        func act(_ command: LedgerCommand, by principal: String) {
            let decision = given.run(command)
            changes += decision.events.map { ($0, principal) }
        }
        act(.disassociateFaces(collectionId: "c", userId: "u", faceIds: [face(1), face(2)]), by: "mallory")
        act(.associateFaces(collectionId: "c", userId: "m", faceIds: [face(1), face(3)], userMatchThreshold: 0), by: "mallory")
        act(.associateFaces(collectionId: "c", userId: "v", faceIds: [face(2)], userMatchThreshold: 0), by: "bob")
        let now = try #require(given.state.collections["c"])

        let plan = RevertPlan.plan(then: then, now: now, changes: changes, principal: "mallory")
        #expect(
            plan.steps == [
                .init(faceId: face(1), currentOwner: "m", formerOwner: "u"),
                .init(faceId: face(3), currentOwner: "m", formerOwner: nil),
            ])
        #expect(
            plan.commands(collectionId: "c") == [
                .disassociateFaces(collectionId: "c", userId: "m", faceIds: [face(1), face(3)]),
                .associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 0),
            ])
        // Without a principal everything since the instant goes back, bob's change too.
        let everything = RevertPlan.plan(then: then, now: now, changes: changes, principal: nil)
        #expect(Set(everything.steps.map(\.faceId)) == [face(1), face(2), face(3)])
        for command in everything.commands(collectionId: "c") { _ = given.run(command) }
        #expect(given.state.collections["c"]?.faces.mapValues(\.userId) == then.faces.mapValues(\.userId))
    }
}
