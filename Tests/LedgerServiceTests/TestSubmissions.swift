import EventLog
import Foundation
import LedgerDomain
import LedgerService

extension CommandSubmission {
    /// A validated command as the API would submit it: `operation` defaults to the command's case name,
    /// the request hash to the command's description.
    static func test(_ command: LedgerCommand, _ operation: String? = nil, token: String? = nil, hash: String? = nil) -> CommandSubmission {
        let operation = operation ?? String("\(command)".prefix { $0 != "(" })
        return CommandSubmission(
            operation: operation, collectionId: command.collectionId, recordedRequest: .object(["op": .string(operation)]),
            requestHash: hash ?? "\(command)", command: .success(command),
            metadata: EventMetadata(principal: "test", requestId: UUID().uuidString, clientToken: token, operation: operation))
    }
}
