import EventLog
import Foundation
import LedgerDomain
import RekognitionWire

/// What a batch's transaction read before deciding: everything the pure step needs.
struct BatchFacts {
    /// The write model's rows the submissions name (`PartialState`).
    var state: LedgerState
    /// The bound tokens the submissions name.
    var tokens: [CommandBatch.TokenKey: CommandBatch.StoredToken] = [:]
    /// Upstream commands not settled yet, by the token a retry would carry.
    var pending: [CommandBatch.TokenKey: PendingUpstreamCommand] = [:]
    /// Among the faces to forget, those whose embeddings the log holds in clear (written before encryption).
    var facesInClear: Set<String> = []
    /// The lease holder of each pending command a settle, retry or abandon step names, as the rows stand.
    var leases: [UUID: UUID] = [:]
    /// For adoption: the collection's unsettled commands and its last log position, as read.
    var unsettledCount = 0
    var lastPosition: Int64 = 0
}

/// What a batch decided: its events (embeddings in clear), answers and bookkeeping, for the transaction
/// to write.
struct BatchPlan {
    var events: [(event: LedgerEvent, metadata: EventMetadata)] = []
    var outcomes: [StepOutcome] = []
    var newTokens: [CommandBatch.NewToken] = []
    /// Commands accepted for the upstream, with the index of their CommandAccepted event and of their outcome.
    var newPending: [(command: PendingUpstreamCommand, keys: [String], acceptedIndex: Int, outcomeIndex: Int)] = []
    /// Settled or abandoned commands whose rows go, with the lease holder that settled them.
    var releases: [(commandId: UUID, owner: UUID)] = []
    /// Commands to try again later, with their holder and when.
    var postponements: [(commandId: UUID, owner: UUID, until: Date)] = []
    /// How many submissions were answered from a bound token.
    var replays = 0

    mutating func record(_ recorded: [LedgerEvent], _ metadata: EventMetadata) {
        events += recorded.map { ($0, metadata) }
    }
}

/// The pure step of a command batch: the submissions, in order, against what the transaction read —
/// idempotent retries answered, each command decided against the state as the previous ones left it
/// (or, in upstream mode, its step taken: accept, settle, retry later, abandon, adopt). No I/O: the
/// transaction around it (`CommandBatch.run`) reads the facts and writes the plan.
enum BatchDecision {
    static func decide(_ submissions: [CommandSubmission], collectionId: String, facts: BatchFacts, now: Date = Date()) -> BatchPlan {
        var plan = BatchPlan()
        var state = facts.state
        var tokens = facts.tokens
        var pending = facts.pending
        var leases = facts.leases

        func apply(_ events: [LedgerEvent]) {
            for event in events {
                // Positions and times are known only after the append; decisions do not depend on them.
                // The write model's rows get the log's, when the appended events are folded into them.
                state.evolve(event, EventContext(collectionId: collectionId, position: 0, recordedAt: now))
            }
        }
        /// True when `owner` holds the command's lease, which it then gives up (a later step of the same
        /// command in this batch finds it gone).
        func takeLease(_ commandId: UUID, heldBy owner: UUID) -> Bool {
            guard leases[commandId] == owner else { return false }
            leases[commandId] = nil
            return true
        }

        for submission in submissions {
            var metadata = submission.metadata
            if metadata.commandId == nil { metadata.commandId = UUID.random() }
            func reject(_ error: LedgerError, upstreamCode: String? = nil) {
                plan.record(
                    [
                        .commandRejected(
                            CommandRejected(
                                request: submission.recordedRequest, error: error.recorded,
                                upstreamCode: upstreamCode))
                    ], metadata)
                plan.outcomes.append(.answered(.failure(error)))
            }
            /// A retry of a settled command: the stored response (who retried is on record), or a
            /// mismatch when the token came with other parameters. False when the token is not bound.
            func replay(_ key: CommandBatch.TokenKey?) -> Bool {
                guard let key, let stored = tokens[key] else { return false }
                if stored.requestHash == submission.requestHash {
                    plan.record(
                        [
                            .commandReplayed(
                                CommandReplayed(
                                    request: submission.recordedRequest,
                                    requestHash: submission.requestHash,
                                    replayOf: stored.position))
                        ], metadata)
                    plan.outcomes.append(.answered(.success(stored.response)))
                    plan.replays += 1
                } else {
                    reject(
                        LedgerError(
                            .idempotentParameterMismatch,
                            "ClientRequestToken \(key.token) was already used with different parameters"))
                }
                return true
            }
            /// The validated command; nil, with the submission rejected, when the request was a client error.
            func validated() -> LedgerCommand? {
                switch submission.command {
                case .failure(let error):
                    reject(error)
                    return nil
                case .success(let command):
                    return command
                }
            }
            func bindToken(_ key: CommandBatch.TokenKey?, response: JSONValue) {
                guard let key, !key.token.hasPrefix(CommandStep.derivedTokenPrefix) else { return }
                tokens[key] = CommandBatch.StoredToken(requestHash: submission.requestHash, response: response, position: nil)
                plan.newTokens.append(
                    CommandBatch.NewToken(
                        key: key, requestHash: submission.requestHash, response: response,
                        settledIndex: plan.events.count - 1))
            }

            switch submission.step {
            case .decide:
                // A token is bound per operation, across collections: the stored request hash covers the
                // CollectionId, so the same token with another collection is a mismatch.
                let key = metadata.clientToken.map { CommandBatch.TokenKey(operation: submission.operation, token: $0) }
                if replay(key) { continue }
                guard let command = validated() else { continue }
                if case .forgetFaces(_, let faceIds, _) = command {
                    // An embedding the log holds in clear has no key to destroy: forgetting it would be a lie.
                    let inClear = Set(faceIds).intersection(facts.facesInClear)
                    if !inClear.isEmpty {
                        reject(
                            LedgerError(
                                .invalidParameter,
                                """
                                The embeddings of \(inClear.sorted().joined(separator: ", ")) were recorded before encryption: run \
                                `faceledger encrypt-log` first, then forget them
                                """))
                        continue
                    }
                }
                let decision = state.decide(command)
                switch decision.result {
                case .failure(let refusal):
                    reject(LedgerError(refusal: refusal))
                case .success(let outcome):
                    guard let response = try? JSONValue(rendering: outcome) else {
                        reject(LedgerError(.internalServerError, "Internal server error"))
                        continue
                    }
                    plan.record(
                        [.commandAccepted(CommandAccepted(request: submission.recordedRequest))] + decision.events,
                        metadata)
                    plan.record(
                        [.commandSettled(CommandSettled(response: response, requestHash: submission.requestHash))],
                        metadata)
                    apply(decision.events)
                    bindToken(key, response: response)
                    plan.outcomes.append(.answered(.success(response)))
                }

            case .accept(let acceptance):
                let key = CommandBatch.TokenKey(operation: submission.operation, token: acceptance.upstreamToken)
                if replay(key) { continue }
                if let earlier = pending[key] {
                    // A retry of a command still unsettled: the caller drives that one, never a second.
                    if earlier.requestHash == submission.requestHash {
                        plan.outcomes.append(.pending(earlier, isNew: false))
                    } else {
                        reject(
                            LedgerError(
                                .idempotentParameterMismatch,
                                "ClientRequestToken \(key.token) was already used with different parameters"))
                    }
                    continue
                }
                guard let command = validated() else { continue }
                plan.record(
                    [
                        .commandAccepted(
                            CommandAccepted(
                                request: submission.recordedRequest,
                                upstreamToken: acceptance.upstreamToken))
                    ], metadata)
                let accepted = PendingUpstreamCommand(
                    commandId: metadata.commandId!, collectionId: collectionId, operation: submission.operation,
                    upstreamToken: acceptance.upstreamToken, requestHash: submission.requestHash,
                    recordedRequest: submission.recordedRequest, body: acceptance.body, acceptedPosition: 0,
                    acceptedAt: now, attempts: 0, metadata: metadata)
                pending[key] = accepted
                plan.newPending.append(
                    (
                        accepted, state.upstreamKeys(for: command),
                        plan.events.count - 1, plan.outcomes.count
                    ))
                plan.outcomes.append(.pending(accepted, isNew: true))

            case .settle(let settlement):
                guard takeLease(settlement.command.commandId, heldBy: settlement.leaseOwner) else {
                    plan.outcomes.append(.superseded)
                    continue
                }
                plan.releases.append((settlement.command.commandId, settlement.leaseOwner))
                let key = CommandBatch.TokenKey(operation: submission.operation, token: settlement.command.upstreamToken)
                pending[key] = nil
                let attempt = settlement.command.attempts + 1
                switch settlement.result {
                case .succeeded(let response, let outcome):
                    let effects = state.mirror(settlement.ledgerCommand, outcome: outcome)
                    plan.record(
                        [.upstreamAttempted(settlement.call.recorded(attempt: attempt, verdict: "SETTLED"))]
                            + effects
                            + [.commandSettled(CommandSettled(response: response, requestHash: submission.requestHash))],
                        metadata)
                    apply(effects)
                    bindToken(key, response: response)
                    plan.outcomes.append(.answered(.success(response)))
                case .rejected(let code, let message):
                    plan.record(
                        [.upstreamAttempted(settlement.call.recorded(attempt: attempt, verdict: "REJECTED"))],
                        metadata)
                    reject(
                        LedgerError(ErrorCode(rawValue: code) ?? .invalidParameter, message),
                        upstreamCode: ErrorCode(rawValue: code) == nil ? code : nil)
                }

            case .retryLater(let retry):
                guard takeLease(retry.command.commandId, heldBy: retry.leaseOwner) else {
                    plan.outcomes.append(.superseded)
                    continue
                }
                plan.postponements.append((retry.command.commandId, retry.leaseOwner, retry.nextAttemptAt))
                plan.record(
                    [.upstreamAttempted(retry.call.recorded(attempt: retry.command.attempts + 1, verdict: "RETRY"))],
                    metadata)
                plan.outcomes.append(
                    .answered(
                        .failure(
                            LedgerError(
                                .serviceUnavailable,
                                "The upstream did not settle the command (\(retry.call.reason ?? "no answer")); it is recorded and will be "
                                    + "retried. Retry the request with the same ClientRequestToken to get its outcome"))))

            case .abandon(let abandonment):
                guard takeLease(abandonment.command.commandId, heldBy: abandonment.leaseOwner) else {
                    plan.outcomes.append(.superseded)
                    continue
                }
                plan.releases.append((abandonment.command.commandId, abandonment.leaseOwner))
                pending[CommandBatch.TokenKey(operation: submission.operation, token: abandonment.command.upstreamToken)] = nil
                plan.record(
                    [
                        .commandAbandoned(
                            CommandAbandoned(
                                attempts: abandonment.command.attempts,
                                reason: abandonment.reason))
                    ], metadata)
                plan.outcomes.append(
                    .answered(
                        .failure(
                            LedgerError(
                                .serviceUnavailable,
                                CommandStep.abandonedPrefix + abandonment.reason))))

            case .adopt(let observation, let record, let readAfter):
                // Unsettled: as read, less those this batch settled or gave up, plus those it accepted. Moved:
                // since the upstream was read, or by an earlier command of this batch.
                let unsettled = facts.unsettledCount - plan.releases.count + plan.newPending.count
                if unsettled > 0 || facts.lastPosition > readAfter || !plan.events.isEmpty {
                    plan.outcomes.append(
                        .answered(
                            .failure(
                                LedgerError(
                                    .conflict,
                                    unsettled > 0
                                        ? "\(unsettled) commands of collection \(collectionId) are unsettled: settle them first (reconcile --once), or their effects would count as drift"
                                        : "collection \(collectionId) changed while the upstream was read: run the check again"))))
                    continue
                }
                let effects = state.adoption(of: observation, in: collectionId)
                if record && !effects.isEmpty {
                    let summary = JSONValue.object(["Observed": .string("upstream"), "Changes": .integer(effects.count)])
                    plan.record(
                        [.commandAccepted(CommandAccepted(request: submission.recordedRequest))] + effects
                            + [.commandSettled(CommandSettled(response: summary, requestHash: ""))], metadata)
                    apply(effects)
                }
                plan.outcomes.append(.adopted(effects))
            }
        }

        return plan
    }
}
