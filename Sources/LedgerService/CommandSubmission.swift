import EventLog
import Foundation
import LedgerDomain
import RekognitionWire

/// A request for a change, as the command processor receives it from the API.
public struct CommandSubmission: Sendable {
    /// The API operation, e.g. `AssociateFaces`.
    public var operation: String
    /// The collection the command is about; '' when the request did not name a valid one.
    public var collectionId: String
    /// The request as recorded in the log: without biometric data.
    public var recordedRequest: JSONValue
    /// SHA-256 of the complete canonical request: what an idempotent retry must match.
    public var requestHash: String
    /// The validated command, or the client error that the request already is.
    public var command: Result<LedgerCommand, LedgerError>
    /// Who sent it, which request, which token, from where (the command id is set by the processor).
    public var metadata: EventMetadata
    /// What to do with it: decide it (the embedded engine), or one step of its life upstream.
    public var step: CommandStep

    public init(
        operation: String, collectionId: String, recordedRequest: JSONValue, requestHash: String,
        command: Result<LedgerCommand, LedgerError>, metadata: EventMetadata, step: CommandStep = .decide
    ) {
        self.operation = operation
        self.collectionId = collectionId
        self.recordedRequest = recordedRequest
        self.requestHash = requestHash
        self.command = command
        self.metadata = metadata
        self.step = step
    }

    /// A later step of an accepted upstream command: settling, retrying or abandoning it.
    public init(_ step: CommandStep, of pending: PendingUpstreamCommand) {
        self.init(
            operation: pending.operation, collectionId: pending.collectionId, recordedRequest: pending.recordedRequest,
            requestHash: pending.requestHash, command: .failure(LedgerError(.internalServerError, "not decided")),
            metadata: pending.metadata, step: step)
    }
}

/// The answer a client gets for a command: the JSON response (as the log records it), or a client-visible error.
public typealias CommandAnswer = Result<JSONValue, LedgerError>
