import EventLog
import Foundation
import LedgerDomain
import Logging
import Postgres
import RekognitionWire
import TestSupport
import Testing

@testable import LedgerService

@Suite("Upstream mode: a command's steps through the processor and its lease, against a real PostgreSQL")
struct UpstreamLifecycleTests {
    private func acceptance(_ command: LedgerCommand, _ operation: String, token: String, hash: String? = nil) -> CommandSubmission {
        CommandSubmission(
            operation: operation, collectionId: command.collectionId, recordedRequest: .object(["op": .string(operation)]),
            requestHash: hash ?? "\(command)", command: .success(command),
            metadata: EventMetadata(principal: "test", requestId: UUID().uuidString, clientToken: token, operation: operation),
            step: .accept(UpstreamAcceptance(body: Array("{\"token\":\"\(token)\"}".utf8), upstreamToken: token)))
    }

    private func call() -> UpstreamCall { UpstreamCall(status: 200, errorCode: nil, duration: .milliseconds(3), reason: nil, by: "request") }

    private func run<T>(_ body: (CommandProcessor, PendingCommands, PostgresConnection) async throws -> T) async throws -> T {
        try await TestDatabase.withFresh { conninfo in
            let connection = try await PostgresConnection.connect(conninfo)
            let pool = PostgresPool(conninfo: conninfo, maxConnections: 2)
            let processor = CommandProcessor(conninfo: conninfo, logger: Logger(label: "test"), biometrics: Biometrics(masterKeys: .ephemeral()))
            let result = try await processor.running { try await body(processor, PendingCommands(pool: pool), connection) }
            await pool.close()
            await connection.close()
            return result
        }
    }

    @Test("accept, retry while pending, claim under a lease, settle: once, by the lease holder only; then a replay")
    func lifecycle() async throws {
        try await run { processor, pending, connection in
            let create = LedgerCommand.createUser(collectionId: "c", userId: "u")
            guard case .pending(let accepted, isNew: true) = await processor.perform(acceptance(create, "CreateUser", token: "t")) else {
                Issue.record("not accepted")
                return
            }
            #expect(try await pending.count() == 1)
            // A retry with the token joins the same command; with other parameters it is a mismatch.
            guard case .pending(let joined, isNew: false) = await processor.perform(acceptance(create, "CreateUser", token: "t")) else {
                Issue.record("the retry did not join")
                return
            }
            #expect(joined.commandId == accepted.commandId)
            guard
                case .answered(.failure(let mismatch)) = await processor.perform(
                    acceptance(.createUser(collectionId: "c", userId: "other"), "CreateUser", token: "t"))
            else {
                Issue.record("no mismatch")
                return
            }
            #expect(mismatch.code == .idempotentParameterMismatch)

            let holder = UUID()
            let claimed = try #require(try await pending.claim(accepted.commandId, owner: holder, for: .seconds(30)))
            #expect(claimed.body == Array("{\"token\":\"t\"}".utf8))
            #expect(try await pending.claim(accepted.commandId, owner: UUID(), for: .seconds(30)) == nil)  // leased

            let answer = JSONValue.object([:])
            func settle(by owner: UUID) -> CommandSubmission {
                CommandSubmission(
                    .settle(
                        UpstreamSettlement(
                            command: claimed, ledgerCommand: create, leaseOwner: owner, call: call(),
                            result: .succeeded(answer, to: create))), of: claimed)
            }
            guard case .superseded = await processor.perform(settle(by: UUID())) else {
                Issue.record("a stranger settled it")
                return
            }
            guard case .answered(.success) = await processor.perform(settle(by: holder)) else {
                Issue.record("not settled")
                return
            }
            guard case .superseded = await processor.perform(settle(by: holder)) else {
                Issue.record("settled twice")
                return
            }
            #expect(try await pending.count() == 0)
            let types = try await connection.query(
                "SELECT type FROM events WHERE command_id = $1 ORDER BY position",
                [.uuid(accepted.commandId)]
            ).map { try $0.decode(String.self, at: 0) }
            #expect(types == ["CommandAccepted", "UpstreamAttempted", "CollectionCreated", "UserCreated", "CommandSettled"])
            // Settled: the token replays the stored response.
            guard case .answered(.success(let replayed)) = await processor.perform(acceptance(create, "CreateUser", token: "t")) else {
                Issue.record("no replay")
                return
            }
            #expect(replayed == answer)
        }
    }

    @Test("a later command on the same user waits for the earlier one; a command on another user does not")
    func ordering() async throws {
        try await run { processor, pending, _ in
            func accept(_ command: LedgerCommand, _ token: String) async throws -> PendingUpstreamCommand {
                guard case .pending(let accepted, _) = await processor.perform(acceptance(command, "CreateUser", token: token)) else {
                    throw LedgerError(.internalServerError, "not accepted")
                }
                return accepted
            }
            let first = try await accept(.createUser(collectionId: "c", userId: "u"), "1")
            let second = try await accept(.deleteUser(collectionId: "c", userId: "u"), "2")
            let other = try await accept(.createUser(collectionId: "c", userId: "v"), "3")
            #expect(try await pending.claim(second.commandId, owner: UUID(), for: .seconds(30)) == nil)
            #expect(try await pending.claim(other.commandId, owner: UUID(), for: .seconds(30)) != nil)
            let holder = UUID()
            let claimed = try #require(try await pending.claim(first.commandId, owner: holder, for: .seconds(30)))
            // A failed call postpones it and gives the lease up; the second still waits.
            let next = Date().addingTimeInterval(60)
            guard
                case .answered(.failure(let unavailable)) = await processor.perform(
                    CommandSubmission(
                        .retryLater(UpstreamRetry(command: claimed, leaseOwner: holder, call: call(), nextAttemptAt: next)), of: claimed))
            else {
                Issue.record("not postponed")
                return
            }
            #expect(unavailable.code == .serviceUnavailable)
            #expect(try await pending.claim(second.commandId, owner: UUID(), for: .seconds(30)) == nil)
            // Not due for a minute: a reconciler's pass leaves it, an operator's `--once` takes it.
            #expect(try await pending.claimDue(owner: UUID(), for: .seconds(30), grace: .zero, limit: 10).map(\.commandId) == [])
            let owner = UUID()
            let taken = try await pending.claimDue(owner: owner, for: .seconds(30), grace: .zero, limit: 10, dueOnly: false)
            #expect(taken.map(\.commandId) == [first.commandId])
            #expect(taken.first?.attempts == 1)
            // Abandoned: its keys are released.
            guard
                case .answered(.failure) = await processor.perform(
                    CommandSubmission(
                        .abandon(UpstreamAbandonment(command: taken[0], leaseOwner: owner, reason: "test")), of: taken[0]))
            else {
                Issue.record("not abandoned")
                return
            }
            #expect(try await pending.claim(second.commandId, owner: UUID(), for: .seconds(30)) != nil)
            let outcome = try await pending.outcome(of: first)
            guard case (.failure(let abandoned), _)? = outcome else {
                Issue.record("\(String(describing: outcome))")
                return
            }
            #expect(abandoned.message.hasPrefix(CommandStep.abandonedPrefix))
        }
    }
}
