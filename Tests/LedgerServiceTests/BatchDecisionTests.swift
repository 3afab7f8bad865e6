import EventLog
import Foundation
import LedgerDomain
import RekognitionWire
import Testing

@testable import LedgerService

/// The pure step of a command batch, without PostgreSQL: what it decides from what the transaction read.
@Suite("A command batch's decisions, without a database")
struct BatchDecisionTests {
    private func submission(
        _ command: LedgerCommand, _ operation: String, token: String? = nil,
        hash: String? = nil
    ) -> CommandSubmission {
        .test(command, operation, token: token, hash: hash)
    }

    private var collection: LedgerState {
        var state = LedgerState()
        state.evolve(
            .collectionCreated(CollectionCreated(collectionId: "c", arn: "arn:c")),
            EventContext(collectionId: "c", position: 1, recordedAt: Date()))
        return state
    }

    private func error(_ outcome: StepOutcome) -> ErrorCode? {
        if case .answered(.failure(let error)) = outcome { return error.code }
        return nil
    }

    @Test("commands decide in order against what the earlier ones left; bound tokens replay or mismatch")
    func orderAndTokens() {
        let bound = CommandBatch.TokenKey(operation: "CreateUser", token: "bound")
        var facts = BatchFacts(state: collection)
        facts.tokens[bound] = CommandBatch.StoredToken(requestHash: "h-bound", response: .object(["Stored": .bool(true)]), position: 7)
        let plan = BatchDecision.decide(
            [
                submission(.createUser(collectionId: "c", userId: "u"), "CreateUser", token: "t1"),
                submission(.createUser(collectionId: "c", userId: "u"), "CreateUser", token: "t2"),
                submission(.createUser(collectionId: "c", userId: "v"), "CreateUser", token: "bound", hash: "h-bound"),
                submission(.createUser(collectionId: "c", userId: "w"), "CreateUser", token: "bound", hash: "other"),
                submission(.deleteUser(collectionId: "c", userId: "u"), "DeleteUser"),
            ], collectionId: "c", facts: facts)

        #expect(plan.outcomes.count == 5)
        guard case .answered(.success) = plan.outcomes[0] else {
            Issue.record("\(plan.outcomes[0])")
            return
        }
        #expect(error(plan.outcomes[1]) == .conflict)  // u exists now: the first command made it
        guard case .answered(.success(let replayed)) = plan.outcomes[2] else {
            Issue.record("\(plan.outcomes[2])")
            return
        }
        #expect(replayed == .object(["Stored": .bool(true)]))
        #expect(error(plan.outcomes[3]) == .idempotentParameterMismatch)
        guard case .answered(.success) = plan.outcomes[4] else {
            Issue.record("\(plan.outcomes[4])")
            return
        }
        #expect(plan.replays == 1)
        // Only the decided command binds its token, at the index of its CommandSettled event.
        #expect(plan.newTokens.map(\.key.token) == ["t1"])
        #expect(plan.events[plan.newTokens[0].settledIndex].event.typeName == "CommandSettled")
        #expect(
            plan.events.map(\.event.typeName) == [
                "CommandAccepted", "UserCreated", "CommandSettled",
                "CommandRejected",
                "CommandReplayed",
                "CommandRejected",
                "CommandAccepted", "UserDeleted", "CommandSettled",
            ])
    }

    @Test("an upstream step needs its command's lease: another holder's is superseded, and a lease taken is gone")
    func leases() {
        let commandId = UUID()
        let (holder, stranger) = (UUID(), UUID())
        let pending = PendingUpstreamCommand(
            commandId: commandId, collectionId: "c", operation: "CreateUser", upstreamToken: "tok", requestHash: "h",
            recordedRequest: .object([:]), body: [], acceptedPosition: 3, acceptedAt: Date(), attempts: 0,
            metadata: EventMetadata(principal: "test", requestId: "r", clientToken: "tok", operation: "CreateUser", commandId: commandId))
        let call = UpstreamCall(status: 200, errorCode: nil, duration: .milliseconds(5), reason: nil, by: "request")
        func settle(by owner: UUID) -> CommandSubmission {
            CommandSubmission(
                .settle(
                    UpstreamSettlement(
                        command: pending, ledgerCommand: .createUser(collectionId: "c", userId: "u"),
                        leaseOwner: owner, call: call,
                        result: .succeeded(.object([:]), to: .createUser(collectionId: "c", userId: "u")))), of: pending)
        }
        var facts = BatchFacts(state: collection)
        facts.leases = [commandId: holder]
        let plan = BatchDecision.decide(
            [
                settle(by: stranger),
                settle(by: holder),
                CommandSubmission(.abandon(UpstreamAbandonment(command: pending, leaseOwner: holder, reason: "too old")), of: pending),
            ], collectionId: "c", facts: facts)

        guard case .superseded = plan.outcomes[0] else {
            Issue.record("\(plan.outcomes[0])")
            return
        }
        guard case .answered(.success) = plan.outcomes[1] else {
            Issue.record("\(plan.outcomes[1])")
            return
        }
        guard case .superseded = plan.outcomes[2] else {
            Issue.record("\(plan.outcomes[2])")
            return
        }
        #expect(plan.releases.map(\.commandId) == [commandId] && plan.releases.map(\.owner) == [holder])
        #expect(plan.events.map(\.event.typeName) == ["UpstreamAttempted", "UserCreated", "CommandSettled"])
        #expect(plan.newTokens.map(\.key.token) == ["tok"])
    }

    @Test("forgetting a face whose embedding the log holds in clear is refused, and nothing is forgotten")
    func forgetInClear() {
        var state = collection
        state.evolve(
            .faceImported(FaceImported(faceId: "f", imageId: "i", confidence: 100), embedding: [1, 0]),
            EventContext(collectionId: "c", position: 2, recordedAt: Date()))
        var facts = BatchFacts(state: state)
        facts.facesInClear = ["f"]
        let plan = BatchDecision.decide(
            [submission(.forgetFaces(collectionId: "c", faceIds: ["f"], reason: nil), "ForgetFaces")],
            collectionId: "c", facts: facts)
        #expect(error(plan.outcomes[0]) == .invalidParameter)
        #expect(plan.events.map(\.event.typeName) == ["CommandRejected"])
    }
}

extension LedgerEvent {
    /// The event's type as the log names it.
    fileprivate var typeName: String { (try? encoded().type) ?? "?" }
}
