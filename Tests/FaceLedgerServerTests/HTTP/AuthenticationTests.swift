import Foundation
import Testing

@testable import FaceLedgerServer

extension HTTPTests {
    /// SigV4 at the door: what a client that signs wrongly, or not at all, is answered.
    @Suite("Authentication errors")
    struct AuthenticationTests {
        static let target = Target.rekognition("CreateUser")
        static let body = Array(#"{"CollectionId":"people","UserId":"bob"}"#.utf8)
        static let mismatch =
            "The request signature we calculated does not match the signature you provided. "
            + "Check your AWS Secret Access Key and signing method."

        @Test("an unsigned request is a 403 MissingAuthenticationTokenException")
        func unsigned() async throws {
            try await withLedgerApp { client in
                expectError(
                    try await client.send(target: Self.target, body: Self.body, signing: .none), 403,
                    "MissingAuthenticationTokenException", "Missing Authentication Token")
            }
        }

        @Test("a wrong secret, a body changed after signing, another service or an old date is an InvalidSignatureException")
        func badSignatures() async throws {
            try await withLedgerApp { client in
                expectError(
                    try await client.send(
                        target: Self.target, body: Self.body,
                        signing: .forged(TestKeys.admin, secret: "not-the-secret")),
                    400, "InvalidSignatureException", Self.mismatch, "wrong secret")
                expectError(
                    try await client.send(
                        target: Self.target, body: Self.body,
                        sentBody: Array(#"{"CollectionId":"people","UserId":"eve"}"#.utf8)),
                    400, "InvalidSignatureException", Self.mismatch, "body changed after signing")
                expectError(
                    try await client.send(target: Self.target, body: Self.body, signing: .forged(TestKeys.admin, service: "s3")),
                    400, "InvalidSignatureException", "Credential should be scoped to correct service: 'rekognition'.")
                let tenMinutesAgo = Date().addingTimeInterval(-600)
                expectError(
                    try await client.send(target: Self.target, body: Self.body, signing: .forged(TestKeys.admin, at: tenMinutesAgo)),
                    400, "InvalidSignatureException",
                    "Signature expired: \(AmzDate.format(tenMinutesAgo)) is now earlier or later than the 5 minutes allowed "
                        + "around the server time")
            }
        }

        @Test("an unknown key is an UnrecognizedClientException; a malformed Authorization an IncompleteSignatureException")
        func unknownKeyAndMalformedHeader() async throws {
            try await withLedgerApp { client in
                let stranger = AccessKey(
                    accessKeyId: "AKIDSTRANGER", secretAccessKey: "stranger-secret", principal: "eve", role: .admin,
                    requestsPerSecond: nil)
                expectError(
                    try await client.send(target: Self.target, body: Self.body, signing: .sdk(stranger)),
                    400, "UnrecognizedClientException", "The security token included in the request is invalid.")
                expectError(
                    try await client.send(
                        target: Self.target, body: Self.body, signing: .none,
                        headers: [("Authorization", "Bearer abc.def.ghi")]),
                    400, "IncompleteSignatureException",
                    "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' with algorithm AWS4-HMAC-SHA256")
                let withoutDate =
                    "AWS4-HMAC-SHA256 Credential=\(TestKeys.admin.accessKeyId)/20250101/eu-west-1/rekognition/aws4_request, "
                    + "SignedHeaders=host;x-amz-target, Signature=" + String(repeating: "0", count: 64)
                expectError(
                    try await client.send(target: Self.target, body: Self.body, signing: .none, headers: [("Authorization", withoutDate)]),
                    400, "IncompleteSignatureException", "Authorization header requires existence of a valid 'X-Amz-Date' header")
            }
        }
    }
}
