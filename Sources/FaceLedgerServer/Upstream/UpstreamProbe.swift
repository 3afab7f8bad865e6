import Foundation
import LedgerDomain
import LedgerService
import Postgres

/// Resolves the unknown outcome of a command that carries no ClientRequestToken upstream, by looking
/// at the upstream's state instead of blindly executing it again (README: "Unknown outcomes").
///
/// | Operation        | Probe                                          | Found: settled as                     | Otherwise      |
/// |------------------|------------------------------------------------|---------------------------------------|----------------|
/// | CreateCollection | DescribeCollection                             | created (the collection's ARN)        | sent again     |
/// | DeleteCollection | DescribeCollection answers ResourceNotFound    | deleted                               | sent again     |
/// | IndexFaces       | ListFaces: faces with the request's ExternalImageId that the ledger does not know | indexed: those faces | sent again |
/// | DeleteFaces      | sent again                                     | faces now "not found" that the ledger still had count as deleted | — |
///
/// Operations with a token (CreateUser, DeleteUser, AssociateFaces, DisassociateFaces, ImportFaces)
/// are sent again with the same token: the upstream answers a replay with the original outcome.
public struct UpstreamProbe: Sendable {
    let client: UpstreamClient
    let pool: PostgresPool

    public init(client: UpstreamClient, pool: PostgresPool) {
        self.client = client
        self.pool = pool
    }

    /// The answer that settles `command` without executing it again, or the failed probe; nil when
    /// the command should simply be sent (again).
    func resolve(_ claimed: PendingUpstreamCommand, command: LedgerCommand) async -> UpstreamExchange? {
        switch command {
        case .createCollection(let id, _, _):
            let described = await call("DescribeCollection", ["CollectionId": .string(id)])
            guard case .answered(let answer) = described else { return described }
            if answer.errorCode == "ResourceNotFoundException" { return nil }
            guard answer.status == 200, let body = try? JSONValue(parsing: Data(answer.body)) else { return Self.failed(described) }
            return Self.synthesized([
                "StatusCode": .integer(200), "CollectionArn": body["CollectionARN"] ?? .string(""),
                "FaceModelVersion": body["FaceModelVersion"] ?? .string(""),
            ])
        case .deleteCollection(let id):
            let described = await call("DescribeCollection", ["CollectionId": .string(id)])
            guard case .answered(let answer) = described else { return described }
            if answer.status == 200 { return nil }
            return answer.errorCode == "ResourceNotFoundException" ? Self.synthesized(["StatusCode": .integer(200)]) : Self.failed(described)
        case .indexFaces(let id, let externalImageId):
            return await resolveIndexing(in: id, externalImageId: externalImageId)
        case .deleteFaces(let id, _):
            let sent = await client.send(target: UpstreamGateway.target(of: claimed.operation), body: claimed.body)
            guard case .answered(let answer) = sent, answer.status == 200,
                let body = try? JSONValue(parsing: Data(answer.body))
            else { return sent }
            let unsuccessful = body["UnsuccessfulFaceDeletions"]?.arrayValue ?? []
            let notFound = unsuccessful.compactMap { entry -> String? in
                let reasons = entry["Reasons"]?.arrayValue.compactMap(\.stringValue) ?? []
                return reasons.contains("FACE_NOT_FOUND") ? entry["FaceId"]?.stringValue : nil
            }
            guard let existing = try? await existingFaces(in: id, among: notFound), !existing.isEmpty else { return sent }
            // Deleted by the earlier call whose answer was lost.
            let deleted = (body["DeletedFaces"]?.arrayValue ?? []) + existing.sorted().map(JSONValue.string)
            var rewritten: [String: JSONValue] = ["DeletedFaces": .array(deleted)]
            let rest = unsuccessful.filter { !existing.contains($0["FaceId"]?.stringValue ?? "") }
            if !rest.isEmpty { rewritten["UnsuccessfulFaceDeletions"] = .array(rest) }
            return Self.synthesized(rewritten)
        default:
            return nil
        }
    }

    /// IndexFaces: the faces carrying the request's ExternalImageId (none: faces without one) that
    /// the ledger has not recorded were indexed by the lost call.
    private func resolveIndexing(in id: String, externalImageId: String?) async -> UpstreamExchange? {
        var found: [JSONValue] = []
        var nextToken: String?
        var modelVersion: JSONValue?
        repeat {
            var request: [String: JSONValue] = ["CollectionId": .string(id), "MaxResults": .integer(4096)]
            if let nextToken { request["NextToken"] = .string(nextToken) }
            let listed = await call("ListFaces", request)
            guard case .answered(let answer) = listed else { return listed }
            if answer.errorCode == "ResourceNotFoundException" { return nil }
            guard answer.status == 200, let body = try? JSONValue(parsing: Data(answer.body)) else { return Self.failed(listed) }
            found += (body["Faces"]?.arrayValue ?? []).filter { $0["ExternalImageId"]?.stringValue == externalImageId }
            modelVersion = body["FaceModelVersion"]
            nextToken = body["NextToken"]?.stringValue
        } while nextToken != nil
        let ids = found.compactMap { $0["FaceId"]?.stringValue }
        guard let known = try? await existingFaces(in: id, among: ids) else {
            return .failed(reason: "the ledger's faces could not be read", mayHaveReachedUpstream: false)
        }
        let records = found.filter { !known.contains($0["FaceId"]?.stringValue ?? "") }.map { face in
            JSONValue.object(["Face": face])
        }
        guard !records.isEmpty else { return nil }
        return Self.synthesized(["FaceRecords": .array(records), "FaceModelVersion": modelVersion ?? .string("")])
    }

    /// The faces among `faceIds` that the log says exist in the collection now (in its latest
    /// incarnation: faces of a collection deleted and created again do not count).
    func existingFaces(in id: String, among faceIds: [String]) async throws -> Set<String> {
        guard !faceIds.isEmpty else { return [] }
        let rows = try await pool.query(
            """
            SELECT DISTINCT ON (stream) stream, type FROM events
            WHERE collection_id = $1 AND stream = ANY($2) AND type IN (\(EventType.sql(.faceImported, .faceDeleted)))
              AND position > coalesce((SELECT max(position) FROM events
                                       WHERE collection_id = $1 AND stream = '\(StreamName.collection)' AND type = \(EventType.collectionCreated.sql)), 0)
            ORDER BY stream, position DESC
            """, [.text(id), .textArray(faceIds.map(StreamName.face))])
        return Set(
            try rows.filter { try $0.decode(String.self, at: 1) == EventType.faceImported.rawValue }
                .map { String(try $0.decode(String.self, at: 0).dropFirst(StreamName.facePrefix.count)) })
    }

    private func call(_ operation: String, _ request: [String: JSONValue]) async -> UpstreamExchange {
        await client.send(target: "RekognitionService." + operation, body: Array(JSONValue.object(request).data))
    }

    /// A probe's own failure: the command's outcome stays unknown and it is tried again later — never
    /// settled with the probe's answer.
    private static func failed(_ exchange: UpstreamExchange) -> UpstreamExchange {
        guard case .answered(let answer) = exchange else { return exchange }
        return .failed(reason: "the probe got \(answer.status) \(answer.errorCode ?? "")", mayHaveReachedUpstream: true)
    }

    private static func synthesized(_ response: [String: JSONValue]) -> UpstreamExchange {
        .answered(
            UpstreamAnswer(
                status: 200, headers: [("content-type", "application/x-amz-json-1.1")],
                body: Array(JSONValue.object(response).data)))
    }
}
