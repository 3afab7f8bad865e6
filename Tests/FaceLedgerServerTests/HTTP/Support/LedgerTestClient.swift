import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore

@testable import FaceLedgerServer

/// The `X-Amz-Target` of an operation.
enum Target {
    static func rekognition(_ operation: String) -> String { "RekognitionService." + operation }
    static func faceLedger(_ operation: String) -> String { "FaceLedger." + operation }
}

/// How a test request is signed.
enum Signing: Sendable {
    /// As an AWS SDK signs: SigV4 over the headers and the body, with the key's secret.
    case sdk(AccessKey)
    /// Signed for `key`'s id, but with another secret, region, service or time than the server expects.
    case forged(AccessKey, secret: String? = nil, service: String = "rekognition", at: Date? = nil)
    /// No `Authorization` at all.
    case none
}

/// Sends AWS JSON 1.1 requests through the application's router, signed as an SDK signs them.
struct LedgerTestClient: Sendable {
    let client: any TestClientProtocol
    /// The region requests are signed for (it goes into ARNs).
    static let region = "eu-west-1"
    /// What the router test client sends as the request's authority, so what the server signs as `host`.
    static let url = URL(string: "http://localhost/")!

    /// Calls `target` with the JSON text `body`, signed by `key`.
    func call(_ target: String, _ body: String, as key: AccessKey = TestKeys.admin) async throws -> AWSReply {
        try await send(target: target, body: Array(body.utf8), signing: .sdk(key))
    }

    /// Sends `body` to `target` (no `X-Amz-Target` when nil), signed as `signing` says, with `headers`
    /// added after signing (so not signed). `sentBody`, when given, is sent instead of the signed body.
    func send(
        target: String?, body: [UInt8], signing: Signing = .sdk(TestKeys.admin),
        contentType: String = "application/x-amz-json-1.1", headers extra: [(name: String, value: String)] = [],
        sentBody: [UInt8]? = nil
    ) async throws -> AWSReply {
        var unsigned: [(name: String, value: String)] = [("content-type", contentType)]
        if let target { unsigned.append(("x-amz-target", target)) }
        let headers: [(name: String, value: String)]
        switch signing {
        case .sdk(let key):
            headers = SigV4Signer.sign(
                method: "POST", url: Self.url, headers: unsigned, body: body, accessKeyId: key.accessKeyId,
                secretAccessKey: key.secretAccessKey, region: Self.region)
        case .forged(let key, let secret, let service, let date):
            headers = SigV4Signer.sign(
                method: "POST", url: Self.url, headers: unsigned, body: body, accessKeyId: key.accessKeyId,
                secretAccessKey: secret ?? key.secretAccessKey, region: Self.region, service: service,
                now: date ?? Date())
        case .none:
            headers = unsigned
        }
        var fields = HTTPFields()
        for (name, value) in headers + extra {
            fields.append(HTTPField(name: HTTPField.Name(name)!, value: value))
        }
        let response = try await client.execute(
            uri: "/", method: .post, headers: fields,
            body: ByteBuffer(bytes: sentBody ?? body))
        return AWSReply(response)
    }
}
