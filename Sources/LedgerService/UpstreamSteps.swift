import EventLog
import Foundation
import LedgerDomain

/// What the command processor does with a submission.
///
/// The embedded engine decides a command and settles it in one append (`decide`). In upstream mode
/// a command's life spans several appends, each a step through the processor (so each sees the
/// state as the log has it, under the append lock): it is accepted and committed before the upstream
/// is called; each failed call is recorded; the upstream's answer settles it, or the reconciler
/// abandons it.
public enum CommandStep: Sendable {
    /// Decide the command against the ledger's state and settle it (the embedded engine).
    case decide
    /// Record the command as accepted, to be executed upstream (`PendingUpstreamCommand`).
    case accept(UpstreamAcceptance)
    /// Settle an accepted command with the upstream's answer.
    case settle(UpstreamSettlement)
    /// Record a call that left the command unsettled, and when to try again.
    case retryLater(UpstreamRetry)
    /// Give up on a command the upstream could not settle in time.
    case abandon(UpstreamAbandonment)
    /// Compare the upstream's state with the ledger's (`reconcile --check`), and with `record`
    /// record the differences as observed (`--adopt`). `readAfter` is the collection's last log
    /// position before the upstream was read: if the log moved since, or commands of the collection
    /// are unsettled, the comparison would mistake them for drift, and is refused.
    case adopt(UpstreamObservation, record: Bool, readAfter: Int64)

    /// How the answer to an abandoned command's step begins.
    public static let abandonedPrefix = "The command was abandoned: "

    /// How the token of a command without a ClientRequestToken upstream begins (CreateCollection,
    /// DeleteCollection, IndexFaces, DeleteFaces): `derived:` and a digest of its principal, operation
    /// and body. An SDK's retry of such a request (after a 503) carries the same body, so while the
    /// first is unsettled the retry joins it instead of becoming a second command. The token is never
    /// bound once settled: the same request later is a new command, as it is upstream.
    public static let derivedTokenPrefix = "derived:"
}

/// What accepting a command for the upstream takes besides the submission.
public struct UpstreamAcceptance: Sendable {
    /// The exact body every call sends upstream (the client's token, or a generated one, in it).
    public var body: [UInt8]
    /// The token the body carries (the client's, or one generated); for an operation that carries none
    /// upstream, the derived token (`CommandStep.derivedTokenPrefix`) that identifies the command.
    public var upstreamToken: String

    public init(body: [UInt8], upstreamToken: String) {
        self.body = body
        self.upstreamToken = upstreamToken
    }
}

/// A command accepted for the upstream and not settled yet: a row of `pending_commands`.
public struct PendingUpstreamCommand: Sendable, Hashable {
    public var commandId: UUID
    public var collectionId: String
    public var operation: String
    public var upstreamToken: String
    public var requestHash: String
    public var recordedRequest: JSONValue
    public var body: [UInt8]
    public var acceptedPosition: Int64
    public var acceptedAt: Date
    /// Calls made so far.
    public var attempts: Int
    /// The command's metadata, carried onto every event of its later steps.
    public var metadata: EventMetadata
}

/// One call to the upstream, as it is recorded.
public struct UpstreamCall: Sendable, Hashable {
    public var status: Int?
    public var errorCode: String?
    public var duration: Duration
    public var reason: String?
    /// `request`, `reconciler` or `probe` (see `UpstreamAttempted.by`).
    public var by: String

    public init(status: Int?, errorCode: String?, duration: Duration, reason: String?, by: String) {
        self.status = status
        self.errorCode = errorCode
        self.duration = duration
        self.reason = reason
        self.by = by
    }
}

/// The upstream's final answer to a command.
public enum UpstreamResult: Sendable, Hashable {
    /// It executed the command: its response, as the log keeps it and a retry gets it back, and what
    /// it came to, read once from it (see `succeeded(_:to:)`).
    case succeeded(JSONValue, CommandOutcome)
    /// It refused the command for what it is: the error it answered with.
    case rejected(code: String, message: String)
}

extension UpstreamResult {
    /// The upstream executed `command` and answered `response`.
    public static func succeeded(_ response: JSONValue, to command: LedgerCommand) -> UpstreamResult {
        .succeeded(response, CommandOutcome(upstreamAnswer: response, to: command))
    }
}

public struct UpstreamSettlement: Sendable {
    public var command: PendingUpstreamCommand
    /// The validated command, for recording the answer's effect.
    public var ledgerCommand: LedgerCommand
    /// Who holds the command's lease; a settlement by anybody else is dropped.
    public var leaseOwner: UUID
    public var call: UpstreamCall
    public var result: UpstreamResult

    public init(
        command: PendingUpstreamCommand, ledgerCommand: LedgerCommand, leaseOwner: UUID, call: UpstreamCall,
        result: UpstreamResult
    ) {
        self.command = command
        self.ledgerCommand = ledgerCommand
        self.leaseOwner = leaseOwner
        self.call = call
        self.result = result
    }
}

public struct UpstreamRetry: Sendable {
    public var command: PendingUpstreamCommand
    public var leaseOwner: UUID
    public var call: UpstreamCall
    public var nextAttemptAt: Date

    public init(command: PendingUpstreamCommand, leaseOwner: UUID, call: UpstreamCall, nextAttemptAt: Date) {
        self.command = command
        self.leaseOwner = leaseOwner
        self.call = call
        self.nextAttemptAt = nextAttemptAt
    }
}

public struct UpstreamAbandonment: Sendable {
    public var command: PendingUpstreamCommand
    public var leaseOwner: UUID
    public var reason: String

    public init(command: PendingUpstreamCommand, leaseOwner: UUID, reason: String) {
        self.command = command
        self.leaseOwner = leaseOwner
        self.reason = reason
    }
}

/// What a step came to.
public enum StepOutcome: Sendable {
    /// The client's answer: the command was decided, replayed, rejected or settled.
    case answered(CommandAnswer)
    /// The command is accepted and unsettled: the caller may try to execute it upstream. `isNew` is
    /// false when the submission was a retry of a command accepted earlier.
    case pending(PendingUpstreamCommand, isNew: Bool)
    /// The step found the command no longer pending under the caller's lease (another instance or
    /// the reconciler settled it, or took it over): nothing was recorded.
    case superseded
    /// The differences found, as the events that record them (recorded only when asked to).
    case adopted([LedgerEvent])
}
