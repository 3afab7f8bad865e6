import EventLog
import Foundation
import LedgerDomain
import LedgerService
import Logging
import Testing

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

/// Runs `commands` through a command processor of its own (no projector runs: the read models stay as
/// they were); a command refused is recorded as an issue of the running test.
func submitThroughProcessor(_ commands: [LedgerCommand], conninfo: String, biometrics: Biometrics) async throws {
    let processor = CommandProcessor(conninfo: conninfo, logger: Logger(label: "test"), biometrics: biometrics)
    try await processor.running {
        for command in commands {
            if case .failure(let error) = await processor.submit(.test(command)) { Issue.record("\(command): \(error)") }
        }
    }
}
