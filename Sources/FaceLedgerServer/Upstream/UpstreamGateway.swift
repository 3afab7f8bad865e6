import EventLog
import Foundation
import LedgerDomain
import LedgerService
import Logging
import Metrics
import RekognitionWire

/// Upstream mode's write path: every ledgered command is accepted in the log before the upstream
/// is called, executed upstream by whoever holds its lease, and settled with the upstream's answer —
/// exactly once, whoever (the client's request, its retry, another instance, the reconciler) gets there.
public struct UpstreamGateway: Sendable {
    public struct Configuration: Sendable {
        /// How long a command's lease lasts: longer than one call to the upstream plus its settlement,
        /// so nobody else calls the upstream for it while its holder may still be doing so.
        public var lease: Duration
        /// When unsettled commands are tried again, and when they are given up.
        public var retryPolicy: RetryPolicy

        public init(lease: Duration, retryPolicy: RetryPolicy = RetryPolicy()) {
            self.lease = lease
            self.retryPolicy = retryPolicy
        }
    }

    let client: UpstreamClient
    let processor: CommandProcessor
    let pending: PendingCommands
    let probe: UpstreamProbe
    let configuration: Configuration
    let logger: Logger

    public init(
        client: UpstreamClient, processor: CommandProcessor, pending: PendingCommands, probe: UpstreamProbe,
        configuration: Configuration, logger: Logger
    ) {
        self.client = client
        self.processor = processor
        self.pending = pending
        self.probe = probe
        self.configuration = configuration
        self.logger = logger
    }

    /// What the client gets: the ledger's own answer, or the upstream's, byte for byte.
    public enum Reply: Sendable {
        case answer(CommandAnswer)
        case upstream(UpstreamAnswer)
    }

    /// The client's request: accepts the command (or finds the one its token names), executes it
    /// upstream unless somebody else is, and answers with the settlement — within `deadline`.
    /// Past it, or when the upstream fails passingly, the client gets a retryable 503; the command
    /// stays recorded and a retry with the same token gets its outcome.
    func execute(_ submission: CommandSubmission, command: LedgerCommand, deadline: ContinuousClock.Instant) async -> Reply {
        while true {
            switch await processor.perform(submission) {
            case .answered(let outcome):
                return .answer(outcome)
            case .superseded, .adopted:
                return .answer(.failure(LedgerError(.internalServerError, "Internal server error")))
            case .pending(let accepted, let isNew):
                if let reply = await drive(accepted, command: command, isNew: isNew, deadline: deadline) { return reply }
                // Settled, rejected or abandoned by somebody else meanwhile: that is the outcome.
                do {
                    if let (outcome, upstreamCode) = try await pending.outcome(of: accepted) {
                        // A rejection with an error code the ledger does not know comes back as the upstream sent it.
                        if case .failure(let error) = outcome, let upstreamCode {
                            return .upstream(
                                UpstreamAnswer(
                                    status: 400, headers: [("content-type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", upstreamCode)],
                                    body: Array(error.body(code: upstreamCode).data)))
                        }
                        return .answer(outcome)
                    }
                } catch {
                    return .answer(.failure(LedgerError.databaseFailure(error)))
                }
                if ContinuousClock.now >= deadline { return .answer(.failure(Self.stillPending)) }
            }
        }
    }

    /// An operator's command (`faceledger revert`), executed upstream like a client's: the request as
    /// the body, with a generated token recorded as the client's. The outcome is the upstream's answer
    /// as the ledger reads it.
    public func execute(
        operation: String, request: [String: JSONValue], command: LedgerCommand, metadata: EventMetadata,
        wait: Duration = .seconds(120)
    ) async -> CommandAnswer {
        let token = UUID.random().uuidString.lowercased()
        var request = request
        request["ClientRequestToken"] = .string(token)
        var metadata = metadata
        metadata.clientToken = token
        let body = JSONValue.object(request)
        let submission = CommandSubmission(
            operation: operation, collectionId: command.collectionId, recordedRequest: body, requestHash: "",
            command: .success(command), metadata: metadata,
            step: .accept(UpstreamAcceptance(body: Array(body.data), upstreamToken: token)))
        switch await execute(submission, command: command, deadline: .now + wait) {
        case .answer(let outcome): return outcome
        case .upstream(let answer): return answer.outcome
        }
    }

    static let stillPending = LedgerError(
        .serviceUnavailable,
        """
        The command is recorded and waits for an earlier command on the same user or face, or is being executed by \
        another request; retry with the same ClientRequestToken to get its outcome
        """)

    /// Takes the command's lease and executes it; waits while it is blocked or leased by somebody
    /// else. Nil when it stopped being pending without this caller.
    private func drive(
        _ accepted: PendingUpstreamCommand, command: LedgerCommand, isNew: Bool,
        deadline: ContinuousClock.Instant
    ) async -> Reply? {
        let owner = UUID()
        var pause = Duration.milliseconds(10)
        while true {
            do {
                if let claimed = try await pending.claim(accepted.commandId, owner: owner, for: configuration.lease) {
                    // Only the request that accepted the command, on its first try, knows that nothing
                    // went upstream before: everybody else resolves a possible earlier execution first.
                    let mayHaveRun = !(isNew && claimed.attempts == 0)
                    return await attempt(claimed, command: command, owner: owner, mayHaveRun: mayHaveRun, until: deadline)
                }
                guard try await pending.contains(accepted.commandId) else { return nil }
            } catch {
                return .answer(.failure(LedgerError.databaseFailure(error)))
            }
            guard ContinuousClock.now + pause < deadline else { return .answer(.failure(Self.stillPending)) }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(200))
        }
    }

    /// The client's attempt, within its deadline: past it the call is cancelled (its outcome is then
    /// unknown and recorded as such; the reconciler resolves it) and the client gets 503. So a client
    /// waits at most its deadline plus the one database step that records the cut-off call.
    private func attempt(
        _ claimed: PendingUpstreamCommand, command: LedgerCommand, owner: UUID, mayHaveRun: Bool,
        until deadline: ContinuousClock.Instant
    ) async -> Reply {
        await withTaskGroup(of: Reply?.self) { group in
            group.addTask { await self.attempt(claimed, command: command, owner: owner, by: "request", mayHaveRun: mayHaveRun) }
            group.addTask {
                try? await Task.sleep(until: deadline)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .answer(.failure(Self.stillPending))
        }
    }

    /// One call for a command whose lease `owner` holds, and its recording: settled with the answer,
    /// rejected, postponed, or (past the policy's maximum age) abandoned.
    ///
    /// - Parameter mayHaveRun: an earlier call may have executed the command upstream; a command
    ///   without a ClientRequestToken upstream is then resolved by probing before it is sent again.
    func attempt(_ claimed: PendingUpstreamCommand, command: LedgerCommand, owner: UUID, by: String, mayHaveRun: Bool) async -> Reply {
        // The lease is renewed before every call that may execute the command: a holder that was slow
        // to get here (a reconciler's earlier commands, a probe's pages) never calls after its lease ran
        // out and somebody else took the command over.
        func stillHeld() async -> Bool {
            (try? await pending.renew(claimed.commandId, owner: owner, for: configuration.lease)) ?? false
        }
        guard await stillHeld() else { return .answer(.failure(Self.stillPending)) }
        let started = ContinuousClock.now
        let exchange: UpstreamExchange
        var kind = by
        if mayHaveRun, let resolved = await probe.resolve(claimed, command: command) {
            exchange = resolved
            kind = "probe"
        } else {
            if mayHaveRun, Self.probes(command), !(await stillHeld()) { return .answer(.failure(Self.stillPending)) }
            exchange = await client.send(target: UpstreamGateway.target(of: claimed.operation), body: claimed.body)
        }
        let verdict = UpstreamVerdict(exchange)
        var call = UpstreamCall(status: nil, errorCode: nil, duration: ContinuousClock.now - started, reason: nil, by: kind)
        var answer: UpstreamAnswer?
        switch exchange {
        case .answered(let answered):
            answer = answered
            call.status = answered.status
            call.errorCode = answered.errorCode
        case .failed(let reason, _):
            call.reason = String(reason.prefix(200))
        }
        switch verdict {
        case .succeeded:
            guard let answer, let response = try? JSONValue(parsing: Data(answer.body)) else {
                call.reason = "the upstream's answer is not JSON"
                return await postpone(claimed, owner: owner, call: call)
            }
            await noteFacesNotFound(in: response, for: claimed)
            return await settle(claimed, command: command, owner: owner, call: call, result: .succeeded(response, to: command), answer: answer)
        case .rejected(let code):
            let message = answer.flatMap { try? JSONValue(parsing: Data($0.body)) }.flatMap {
                $0["message"]?.stringValue ?? $0["Message"]?.stringValue
            }
            return await settle(
                claimed, command: command, owner: owner, call: call,
                result: .rejected(code: code, message: message ?? code), answer: answer)
        case .retry(let reason):
            call.reason = call.reason ?? String(reason.prefix(200))
            logger.warning(
                "upstream call did not settle the command",
                metadata: [
                    "command": "\(claimed.commandId)", "operation": "\(claimed.operation)", "reason": "\(call.reason ?? "")",
                ])
            return await postpone(claimed, owner: owner, call: call)
        }
    }

    /// Amazon Rekognition is eventually consistent right after IndexFaces: it may answer FACE_NOT_FOUND
    /// for a face indexed a moment ago. The answer is recorded as it came; a face the ledger has is
    /// worth a line, so an operator can tell a lag from a drift (`reconcile --check`).
    private func noteFacesNotFound(in response: JSONValue, for claimed: PendingUpstreamCommand) async {
        let entries =
            (response["UnsuccessfulFaceAssociations"]?.arrayValue ?? [])
            + (response["UnsuccessfulFaceDisassociations"]?.arrayValue ?? [])
        let notFound = entries.compactMap { entry -> String? in
            (entry["Reasons"]?.arrayValue.contains(.string("FACE_NOT_FOUND")) ?? false) ? entry["FaceId"]?.stringValue : nil
        }
        guard !notFound.isEmpty, let known = try? await probe.existingFaces(in: claimed.collectionId, among: notFound),
            !known.isEmpty
        else { return }
        logger.warning(
            "the upstream does not find faces the ledger has (indexed moments ago, or deleted behind its back)",
            metadata: [
                "command": "\(claimed.commandId)", "collection": "\(claimed.collectionId)", "faces": "\(known.sorted())",
            ])
    }

    private func settle(
        _ claimed: PendingUpstreamCommand, command: LedgerCommand, owner: UUID, call: UpstreamCall,
        result: UpstreamResult, answer: UpstreamAnswer?
    ) async -> Reply {
        let settlement = UpstreamSettlement(command: claimed, ledgerCommand: command, leaseOwner: owner, call: call, result: result)
        switch await processor.perform(CommandSubmission(.settle(settlement), of: claimed)) {
        case .answered(.success(let response)):
            // A probe's answer is the ledger's own reconstruction; a call's is returned as it came.
            if let answer, call.by != "probe" { return .upstream(answer) }
            return .answer(.success(response))
        case .answered(.failure(let error)):
            if case .rejected = result, let answer, error.code != .serviceUnavailable, error.code != .internalServerError {
                return .upstream(answer)
            }
            // Not recorded (the database failed or was too slow): the command stays pending, and
            // once the lease runs out the reconciler replays it with the same token.
            return .answer(.failure(error))
        case .superseded:
            // Somebody else settled it (our lease had run out): the upstream executed it once, with
            // one token, so its answer is the same.
            if let answer { return .upstream(answer) }
            return .answer(.failure(Self.stillPending))
        case .pending, .adopted:
            return .answer(.failure(LedgerError(.internalServerError, "Internal server error")))
        }
    }

    private func postpone(_ claimed: PendingUpstreamCommand, owner: UUID, call: UpstreamCall) async -> Reply {
        switch configuration.retryPolicy.next(
            afterAttempts: claimed.attempts + 1, acceptedAt: claimed.acceptedAt, now: Date(),
            jitter: Double.random(in: 0...1))
        {
        case .retry(let at):
            let step = CommandStep.retryLater(UpstreamRetry(command: claimed, leaseOwner: owner, call: call, nextAttemptAt: at))
            switch await processor.perform(CommandSubmission(step, of: claimed)) {
            case .answered(let outcome): return .answer(outcome)
            case .superseded, .pending, .adopted: return .answer(.failure(Self.stillPending))
            }
        case .abandon:
            return await abandon(claimed, owner: owner, reason: "unsettled after \(claimed.attempts + 1) attempts: \(call.reason ?? "")")
        }
    }

    /// Gives up on a command `owner` holds the lease of: recorded (`CommandAbandoned`), logged at
    /// error level and counted. Its outcome upstream stays unknown; `reconcile --list` lists it.
    func abandon(_ claimed: PendingUpstreamCommand, owner: UUID, reason: String) async -> Reply {
        logger.error(
            "upstream command abandoned",
            metadata: [
                "command": "\(claimed.commandId)", "operation": "\(claimed.operation)", "reason": "\(reason)",
            ])
        let step = CommandStep.abandon(UpstreamAbandonment(command: claimed, leaseOwner: owner, reason: reason))
        switch await processor.perform(CommandSubmission(step, of: claimed)) {
        case .answered(let outcome):
            Counter(label: "faceledger_reconciler_abandoned_total").increment()
            return .answer(outcome)
        case .superseded, .pending, .adopted:
            return .answer(.failure(Self.stillPending))
        }
    }

    /// True for the operations whose unknown outcomes are resolved by probing (`UpstreamProbe`).
    static func probes(_ command: LedgerCommand) -> Bool {
        switch command {
        case .createCollection, .deleteCollection, .indexFaces, .deleteFaces: true
        default: false
        }
    }

    /// The `X-Amz-Target` of a ledgered operation upstream.
    static func target(of operation: String) -> String {
        (operation == "ImportFaces" ? "FaceLedger." : "RekognitionService.") + operation
    }
}
