import Crypto
import EventLog
import Foundation
import LedgerDomain
import LedgerService
import Logging
import Postgres
import RekognitionWire

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
    /// Upstream mode: executes ledgered commands on the upstream and passes every other Rekognition
    /// operation through. Nil: the embedded engine.
    var upstream: UpstreamGateway? = nil
    /// How long a client waits for a command's outcome in upstream mode (the database's deadline plus
    /// one call to the upstream).
    var upstreamWait: Duration = .seconds(35)

    /// A finished exchange: the JSON body, or an error to render.
    typealias Answer = Result<JSONValue, LedgerError>
    /// What goes back to the client: the ledger's answer, or in upstream mode the upstream's.
    typealias Reply = UpstreamGateway.Reply

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
            Admission(claim: claim, bodyLimit: maxBodyBytes(target: target, role: claim.key.role))
        }
    }

    /// Bodies past this are refused before they are read, whoever sends them.
    func maxBodyBytes(target: String?) -> Int {
        if carriesImage(target) { return Operation.imageMaxBodyBytes }
        return (try? Operation.from(target: target))?.maxBodyBytes ?? Operation.defaultMaxBodyBytes
    }

    /// The body limit for a key of `role`: only a role that may perform the operation gets a large one.
    func maxBodyBytes(target: String?, role: Role) -> Int {
        if carriesImage(target) {
            let name = target.map { String($0.dropFirst(Operation.rekognitionPrefix.count)) } ?? ""
            return role == .auditor && !PassThrough.onlyReads(name) ? Operation.defaultMaxBodyBytes : Operation.imageMaxBodyBytes
        }
        return (try? Operation.from(target: target))?.maxBodyBytes(for: role) ?? Operation.defaultMaxBodyBytes
    }

    /// Upstream mode: IndexFaces and the operations passed through may carry an image.
    private func carriesImage(_ target: String?) -> Bool {
        guard upstream != nil, let target else { return false }
        return target == Operation.rekognitionPrefix + Operation.indexFaces.rawValue || PassThrough.applies(to: target)
    }

    /// Handles one `POST /` that `admit` let through and whose body was read within its limit.
    func handle(_ admission: Admission, target: String?, request: SignedRequest, requestId: String, sourceAddress: String?) async -> Reply {
        let signer: Signer
        switch verifier.verifySignature(admission.claim, of: request) {
        case .success(let verified): signer = verified
        case .failure(let error): return .answer(.failure(error))
        }
        guard rateLimiter.admit(signer.key) else {
            return .answer(.failure(LedgerError(.throttling, "Rate exceeded for access key \(signer.key.accessKeyId)")))
        }
        if let upstream, let target, PassThrough.applies(to: target) {
            return await PassThrough.forward(target: target, body: request.body, signer: signer, via: upstream.client)
        }
        let operation: Operation
        do {
            operation = try Operation.from(target: target)
        } catch {
            return .answer(.failure(error as? LedgerError ?? LedgerError(.unknownOperation, "Unknown operation")))
        }
        let metadata = EventMetadata(
            principal: signer.key.principal, requestId: requestId, operation: operation.rawValue,
            sourceAddress: sourceAddress)
        if operation.isCommand {
            return await command(operation, body: request.body, signer: signer, metadata: metadata)
        }
        return .answer(await answerRead(operation, body: request.body, signer: signer))
    }

    private func answerRead(_ operation: Operation, body: [UInt8], signer: Signer) async -> Answer {
        guard operation.isAllowed(for: signer.key.role) else { return .failure(Self.accessDenied(signer, operation)) }
        do {
            // Reads of the read models wait for the projector; the audit reads the log itself, which
            // already holds every committed event.
            if !operation.isAudit { await projector.waitUntilFolded(processor.committedPosition) }
            return .success(try await read(operation, body: body))
        } catch let error as LedgerError {
            return .failure(error)
        } catch {
            logger.error(
                "read failed",
                metadata: [
                    "operation": "\(operation.rawValue)", "error": "\(error)",
                    "detail": "\((error as? PostgresError)?.serverMessage ?? "")",
                ])
            return .failure(LedgerError.databaseFailure(error))
        }
    }

    static func accessDenied(_ signer: Signer, _ operation: Operation) -> LedgerError {
        LedgerError(
            .accessDenied, "User \(signer.key.principal) with role \(signer.key.role.rawValue) is not authorized to perform \(operation.rawValue)")
    }

    // MARK: Commands

    private func command(_ operation: Operation, body: [UInt8], signer: Signer, metadata: EventMetadata) async -> Reply {
        switch operation {
        case .createCollection: return await submit(CreateCollectionRequest.self, operation, body, signer, metadata)
        case .deleteCollection: return await submit(CollectionRequest.self, operation, body, signer, metadata)
        case .createUser: return await submit(UserRequest<CreateUser>.self, operation, body, signer, metadata)
        case .deleteUser: return await submit(UserRequest<DeleteUser>.self, operation, body, signer, metadata)
        case .associateFaces: return await submit(AssociateFacesRequest.self, operation, body, signer, metadata)
        case .disassociateFaces: return await submit(DisassociateFacesRequest.self, operation, body, signer, metadata)
        case .deleteFaces: return await submit(DeleteFacesRequest.self, operation, body, signer, metadata)
        case .forgetFaces: return await submit(ForgetFacesRequest.self, operation, body, signer, metadata)
        case .importFaces:
            return await submit(ImportFacesRequest.self, operation, body, signer, metadata) { $0.generateIds() }
        case .indexFaces:
            if upstream != nil { return await submit(IndexFacesRequest.self, operation, body, signer, metadata) }
            return .answer(await reject(operation, body, metadata, LedgerError(refusal: .noImageModel)))
        default:
            return .answer(.failure(LedgerError(.internalServerError, "Internal server error")))
        }
    }

    /// Decodes, checks and submits a command. Every client error of an authenticated command is
    /// recorded in the ledger (its token is not bound).
    private func submit<R: CommandRequest>(
        _: R.Type, _ operation: Operation, _ body: [UInt8], _ signer: Signer, _ metadata: EventMetadata,
        prepare: (inout R) -> Void = { _ in }
    ) async -> Reply {
        var request: R
        do {
            request = try RequestDecoding.decode(R.self, from: body)
        } catch {
            return .answer(await reject(operation, body, metadata, error as? LedgerError ?? .invalidParameter("Invalid request")))
        }
        prepare(&request)
        var metadata = metadata
        let recorded = (try? request.recorded) ?? .null
        let collectionId = RequestDecoding.collectionId(request.CollectionId)
        guard operation.isAllowed(for: signer.key.role) else {
            return .answer(
                await processor.submit(
                    CommandSubmission(
                        operation: operation.rawValue, collectionId: collectionId, recordedRequest: recorded, requestHash: "",
                        command: .failure(Self.accessDenied(signer, operation)), metadata: metadata)))
        }
        let command: Result<LedgerCommand, LedgerError>
        do {
            try request.validate()
            metadata.clientToken = request.ClientRequestToken
            command = .success(request.command(region: signer.region))
        } catch {
            command = .failure(error as? LedgerError ?? .invalidParameter("Invalid request"))
        }
        let hash = (try? CanonicalJSON.encode(request.withoutToken)).map { SHA256.hash(data: $0).hexString } ?? ""
        var submission = CommandSubmission(
            operation: operation.rawValue, collectionId: collectionId, recordedRequest: recorded, requestHash: hash,
            command: command, metadata: metadata)
        if upstream != nil && operation == .forgetFaces {
            // The upstream keeps its own face vectors, which the ledger cannot destroy: forgetting here
            // would answer FORGOTTEN while the face still matches upstream.
            submission.command = .failure(
                LedgerError.invalidParameter(
                    "In upstream mode the biometrics are the upstream's: delete the faces with DeleteFaces, which the ledger records and which destroys its own copies"
                ))
        }
        guard let upstream, case .success(let validated) = submission.command else {
            return .answer(await processor.submit(submission))
        }
        // The client's token goes upstream with every call; without one, a generated token does, and
        // is recorded with the command so that every replay reuses it. An operation that carries no
        // token upstream gets one derived from the request, so an SDK's retry joins its command.
        let token =
            R.carriesToken
            ? request.ClientRequestToken ?? UUID.random().uuidString.lowercased()
            : CommandStep.derivedTokenPrefix + SHA256.hash(data: Array("\(signer.key.principal)\n\(operation.rawValue)\n".utf8) + body).hexString
        var upstreamBody = body
        if R.carriesToken && request.ClientRequestToken == nil, case .object(var members)? = try? JSONValue(parsing: Data(body)) {
            members["ClientRequestToken"] = .string(token)
            upstreamBody = Array(JSONValue.object(members).data)
        }
        submission.step = .accept(UpstreamAcceptance(body: upstreamBody, upstreamToken: token))
        return await upstream.execute(submission, command: validated, deadline: .now + upstreamWait)
    }

    /// The command a ledgered request body holds, as the reconciler rebuilds it from a pending
    /// command's stored body.
    static func ledgeredCommand(operation: String, body: [UInt8], region: String) throws -> LedgerCommand {
        func decoded<R: CommandRequest>(_: R.Type, _ adjust: (inout R) -> Void = { _ in }) throws -> LedgerCommand {
            var request = try RequestDecoding.decode(R.self, from: body)
            adjust(&request)
            try request.validate()
            return request.command(region: region)
        }
        switch Operation(rawValue: operation) {
        case .createCollection: return try decoded(CreateCollectionRequest.self)
        case .deleteCollection: return try decoded(CollectionRequest.self)
        case .createUser: return try decoded(UserRequest<CreateUser>.self)
        case .deleteUser: return try decoded(UserRequest<DeleteUser>.self)
        case .associateFaces: return try decoded(AssociateFacesRequest.self)
        case .disassociateFaces: return try decoded(DisassociateFacesRequest.self)
        case .deleteFaces: return try decoded(DeleteFacesRequest.self)
        case .indexFaces: return try decoded(IndexFacesRequest.self)
        case .importFaces:
            return try decoded(ImportFacesRequest.self) { $0.generateIds() }
        default: throw LedgerError.invalidParameter("\(operation) is not a ledgered operation")
        }
    }

    /// Records a request that is a client error before it could be decoded.
    private func reject(_ operation: Operation, _ body: [UInt8], _ metadata: EventMetadata, _ error: LedgerError) async -> Answer {
        let collectionId = RequestDecoding.collectionId(RequestDecoding.rawCollectionId(body))
        return await processor.submit(
            CommandSubmission(
                operation: operation.rawValue, collectionId: collectionId, recordedRequest: .null, requestHash: "",
                command: .failure(error), metadata: metadata))
    }
}
