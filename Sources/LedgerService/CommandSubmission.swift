import EventLog
import Foundation
import LedgerDomain

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

    public init(
        operation: String, collectionId: String, recordedRequest: JSONValue, requestHash: String,
        command: Result<LedgerCommand, LedgerError>, metadata: EventMetadata
    ) {
        self.operation = operation
        self.collectionId = collectionId
        self.recordedRequest = recordedRequest
        self.requestHash = requestHash
        self.command = command
        self.metadata = metadata
    }
}

/// What a command came to: the JSON response, or a client-visible error.
public typealias CommandOutcome = Result<JSONValue, LedgerError>
