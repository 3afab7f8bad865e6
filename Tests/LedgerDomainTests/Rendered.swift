import LedgerDomain
import RekognitionWire

extension Decision {
    /// The decision as a client gets it: the outcome rendered by the wire, or the refusal's error.
    var rendered: Result<JSONValue, LedgerError> {
        switch result {
        case .success(let outcome): .success(try! JSONValue(rendering: outcome))
        case .failure(let refusal): .failure(LedgerError(refusal: refusal))
        }
    }
}

extension LedgerState {
    /// What the ledger records for an upstream's answer, read as the service reads it.
    func mirror(_ command: LedgerCommand, answer: JSONValue) -> [LedgerEvent] {
        mirror(command, outcome: CommandOutcome(upstreamAnswer: answer, to: command))
    }
}
