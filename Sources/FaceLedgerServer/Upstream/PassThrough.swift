import Foundation
import LedgerDomain
import RekognitionWire

/// Upstream mode: the Rekognition operations the ledger does not record go to the upstream as they
/// came, re-signed with the ledger's credentials, and the upstream's answer — error or not — goes back
/// byte for byte. So a client in front of Amazon Rekognition gets the whole API (SearchUsersByImage,
/// DetectFaces, tagging, …), not only the operations of the embedded engine.
enum PassThrough {
    /// Operations the ledger records (`UpstreamGateway`) or answers itself (the audit, `FaceLedger.*`).
    static let ledgered: Set<String> = [
        "CreateCollection", "DeleteCollection", "CreateUser", "DeleteUser", "AssociateFaces", "DisassociateFaces",
        "IndexFaces", "DeleteFaces",
    ]

    /// True for a Rekognition target the ledger does not record.
    static func applies(to target: String) -> Bool {
        guard target.hasPrefix(Operation.rekognitionPrefix) else { return false }
        return !ledgered.contains(String(target.dropFirst(Operation.rekognitionPrefix.count)))
    }

    /// Operations an auditor may pass through: those that only read.
    static func onlyReads(_ name: String) -> Bool {
        ["List", "Describe", "Search", "Detect", "Get", "Compare", "Recognize"].contains { name.hasPrefix($0) }
    }

    static func forward(target: String, body: [UInt8], signer: Signer, via client: UpstreamClient) async -> UpstreamGateway.Reply {
        let name = String(target.dropFirst(Operation.rekognitionPrefix.count))
        if signer.key.role == .auditor && !onlyReads(name) {
            return .answer(
                .failure(
                    LedgerError(
                        .accessDenied,
                        "User \(signer.key.principal) with role auditor is not authorized to perform \(name.prefix(128))")))
        }
        switch await client.send(target: target, body: body) {
        case .answered(let answer):
            return .upstream(answer)
        case .failed:
            return .answer(.failure(LedgerError(.serviceUnavailable, "The upstream did not answer; retry the request")))
        }
    }
}
