import Crypto
import EventLog
import Foundation
import LedgerDomain
import LedgerService
import Logging
import Postgres

/// The Rekognition-compatible API over the ledger: authenticates, validates, and answers each
/// operation from the command processor (changes) or the read models (reads).
public struct LedgerAPI: Sendable {
    let processor: CommandProcessor
    let projector: Projector
    let readModels: ReadModels
    let audit: AuditQueries
    let verifier: SigV4Verifier
    let rateLimiter = RateLimiter()
    let tokens: PaginationTokens
    let logger: Logger

    /// A finished exchange: the JSON body, or an error to render.
    typealias Answer = Result<JSONValue, LedgerError>

    /// What the header stage let through: a signer whose signature is still to be checked against
    /// the body, and how many body bytes the request may send.
    struct Admission: Sendable {
        let claim: SignatureClaim
        let bodyLimit: Int
    }

    /// The header stage, before any of the body is read: a request that is unsigned, signed by an
    /// unknown key, signed with a malformed, expired or wrongly scoped signature fails here, and the
    /// body limit is the one of the target's operation for the key's role. `head.body` is not read.
    ///
    /// A role that may not perform an operation is not refused here: an authenticated command's denied
    /// attempt is recorded in the ledger, which needs its (small) body and its verified signature.
    func admit(_ head: SignedRequest, target: String?) -> Result<Admission, LedgerError> {
        verifier.checkHeaders(head).map { claim in
            let operation = try? Operation.from(target: target)
            return Admission(claim: claim, bodyLimit: operation?.maxBodyBytes(for: claim.key.role) ?? Operation.defaultMaxBodyBytes)
        }
    }

    /// Handles one `POST /` that `admit` let through and whose body was read within its limit.
    func handle(_ admission: Admission, target: String?, request: SignedRequest, requestId: String, sourceAddress: String?) async -> Answer {
        let signer: Signer
        switch verifier.verifySignature(admission.claim, of: request) {
        case .success(let verified): signer = verified
        case .failure(let error): return .failure(error)
        }
        guard rateLimiter.admit(signer.key) else {
            return .failure(LedgerError(.throttling, "Rate exceeded for access key \(signer.key.accessKeyId)"))
        }
        let operation: Operation
        do {
            operation = try Operation.from(target: target)
        } catch {
            return .failure(error as? LedgerError ?? LedgerError(.unknownOperation, "Unknown operation"))
        }
        let metadata = EventMetadata(principal: signer.key.principal, requestId: requestId, operation: operation.rawValue,
                                     sourceAddress: sourceAddress)
        if operation.isCommand {
            return await command(operation, body: request.body, signer: signer, metadata: metadata)
        }
        guard operation.isAllowed(for: signer.key.role) else { return .failure(Self.accessDenied(signer, operation)) }
        do {
            // Reads of the read models wait for the projector; the audit reads the log itself, which
            // already holds every committed event.
            if !operation.isAudit { await projector.waitUntilFolded(processor.committedPosition) }
            return .success(try await read(operation, body: request.body))
        } catch let error as LedgerError {
            return .failure(error)
        } catch {
            logger.error("read failed", metadata: ["operation": "\(operation.rawValue)", "error": "\(error)",
                                                   "detail": "\((error as? PostgresError)?.serverMessage ?? "")"])
            return .failure(LedgerError.databaseFailure(error))
        }
    }

    static func accessDenied(_ signer: Signer, _ operation: Operation) -> LedgerError {
        LedgerError(.accessDenied, "User \(signer.key.principal) with role \(signer.key.role.rawValue) is not authorized to perform \(operation.rawValue)")
    }

    // MARK: Commands

    private func command(_ operation: Operation, body: [UInt8], signer: Signer, metadata: EventMetadata) async -> Answer {
        switch operation {
        case .createCollection: return await submit(CreateCollectionRequest.self, operation, body, signer, metadata)
        case .deleteCollection: return await submit(CollectionRequest.self, operation, body, signer, metadata)
        case .createUser: return await submit(UserRequest.self, operation, body, signer, metadata)
        case .deleteUser: return await submit(UserRequest.self, operation, body, signer, metadata) { $0.isDelete = true }
        case .associateFaces: return await submit(AssociateFacesRequest.self, operation, body, signer, metadata)
        case .disassociateFaces: return await submit(DisassociateFacesRequest.self, operation, body, signer, metadata)
        case .deleteFaces: return await submit(DeleteFacesRequest.self, operation, body, signer, metadata)
        case .importFaces:
            return await submit(ImportFacesRequest.self, operation, body, signer, metadata) { request in
                request.generatedIds = (request.Faces ?? []).map { _ in
                    (UUID().uuidString.lowercased(), UUID().uuidString.lowercased())
                }
            }
        case .indexFaces:
            return await reject(operation, body, metadata, LedgerError.noImageModel)
        default:
            return .failure(LedgerError(.internalServerError, "Internal server error"))
        }
    }

    /// Decodes, checks and submits a command. Every client error of an authenticated command is
    /// recorded in the ledger (its token is not bound).
    private func submit<R: CommandRequest>(
        _: R.Type, _ operation: Operation, _ body: [UInt8], _ signer: Signer, _ metadata: EventMetadata,
        prepare: (inout R) -> Void = { _ in }
    ) async -> Answer {
        var request: R
        do {
            request = try RequestDecoding.decode(R.self, from: body)
        } catch {
            return await reject(operation, body, metadata, error as? LedgerError ?? .invalidParameter("Invalid request"))
        }
        prepare(&request)
        var metadata = metadata
        let recorded = (try? request.recorded) ?? .null
        let collectionId = RequestDecoding.collectionId(request.CollectionId)
        guard operation.isAllowed(for: signer.key.role) else {
            return await processor.submit(CommandSubmission(
                operation: operation.rawValue, collectionId: collectionId, recordedRequest: recorded, requestHash: "",
                command: .failure(Self.accessDenied(signer, operation)), metadata: metadata))
        }
        let command: Result<LedgerCommand, LedgerError>
        do {
            try request.validate()
            metadata.clientToken = request.ClientRequestToken
            command = .success(request.command(signer: signer))
        } catch {
            command = .failure(error as? LedgerError ?? .invalidParameter("Invalid request"))
        }
        let hash = (try? CanonicalJSON.encode(request.withoutToken)).map { SigV4Verifier.hex(SHA256.hash(data: $0)) } ?? ""
        return await processor.submit(CommandSubmission(
            operation: operation.rawValue, collectionId: collectionId, recordedRequest: recorded, requestHash: hash,
            command: command, metadata: metadata))
    }

    /// Records a request that is a client error before it could be decoded.
    private func reject(_ operation: Operation, _ body: [UInt8], _ metadata: EventMetadata, _ error: LedgerError) async -> Answer {
        let collectionId = RequestDecoding.collectionId(RequestDecoding.rawCollectionId(body))
        return await processor.submit(CommandSubmission(
            operation: operation.rawValue, collectionId: collectionId, recordedRequest: .null, requestHash: "",
            command: .failure(error), metadata: metadata))
    }
}
