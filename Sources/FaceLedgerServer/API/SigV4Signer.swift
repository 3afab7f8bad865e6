import Crypto
import EventLog
import Foundation

/// Signs requests as the AWS SDKs do: the ledger's calls to its upstream, `faceledger loadtest`'s
/// requests, and the tests'. The canonical form is `SigV4`'s, so what one signs the other verifies.
public enum SigV4Signer {
    /// A client signs every request of a day with the same derived key.
    private static let signingKeys = SigningKeyCache()

    /// Returns the headers to send, `Authorization` and `X-Amz-Date` included.
    public static func sign(
        method: String, url: URL, headers: [(name: String, value: String)], body: [UInt8],
        accessKeyId: String, secretAccessKey: String, region: String, service: String = "rekognition", now: Date = Date()
    ) -> [(name: String, value: String)] {
        let amzDate = AmzDate.format(now)
        let date = String(amzDate.prefix(8))
        let host = url.port.map { "\(url.host ?? ""):\($0)" } ?? (url.host ?? "")
        var all = headers + [(name: "host", value: host), (name: "x-amz-date", value: amzDate)]
        let signedHeaders = Set(all.map { $0.name.lowercased() }).sorted()
        let request = SignedRequest(
            method: method, path: url.path.isEmpty ? "/" : url.path, query: url.query ?? "",
            headers: all, body: body)
        let canonical = SigV4.canonicalRequest(request, signedHeaders: signedHeaders)
        let scope = "\(date)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, SHA256.hash(data: Data(canonical.utf8)).hexString].joined(separator: "\n")
        let key = signingKeys.key(secret: secretAccessKey, date: date, region: region, service: service)
        let signature = HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key).hexString
        all.append(
            (
                name: "Authorization",
                value:
                    "AWS4-HMAC-SHA256 Credential=\(accessKeyId)/\(scope), SignedHeaders=\(signedHeaders.joined(separator: ";")), Signature=\(signature)"
            ))
        return all.filter { $0.name != "host" }
    }
}
