import Crypto
import EventLog
import Foundation
import LedgerDomain
import RekognitionWire
import Synchronization

/// A request as Signature Version 4 sees it.
public struct SignedRequest: Sendable {
    public var method: String
    public var path: String
    public var query: String
    /// Header names in any case; a name may repeat.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String, path: String, query: String, headers: [(name: String, value: String)], body: [UInt8]) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The value of header `name` (given in lower case); repeated headers joined with commas.
    func header(_ name: String) -> String? {
        // Lower-casing only names of the right length: this runs for every signed header of every request.
        let values = headers.filter { $0.name.utf8.count == name.utf8.count && $0.name.lowercased() == name }.map(\.value)
        return values.isEmpty ? nil : values.joined(separator: ",")
    }
}

/// Who signed a request, once the signature checked out.
public struct Signer: Sendable {
    public var key: AccessKey
    /// The region named in the credential scope.
    public var region: String
}

/// What a request's headers claim about its signer, checked in everything but the signature itself
/// (which covers the body): the key is known, the scope is `<date>/<region>/rekognition/aws4_request`,
/// the date is within the allowed skew, and every signed header is present.
public struct SignatureClaim: Sendable {
    public let key: AccessKey
    /// The region named in the credential scope.
    public let region: String
    /// The scope's date (`yyyyMMdd`) and the request's `X-Amz-Date`.
    let date: String
    let amzDate: String
    let signedHeaders: [String]
    let signature: String
}

/// Verifies AWS Signature Version 4 (`Authorization: AWS4-HMAC-SHA256 …`) for the `rekognition`
/// service, in any region, with ±5 minutes of clock skew.
///
/// Verification has two stages so that a server can refuse a request before it reads its body:
/// `checkHeaders` needs the headers alone; `verifySignature` then computes the HMAC, which covers the
/// body. `verify` runs both.
public struct SigV4Verifier: Sendable {
    public let credentials: CredentialStore
    public var service = "rekognition"
    public var allowedSkew: TimeInterval = 300
    /// Signing keys already derived: a key is the same for every request of a day, region and secret.
    private let signingKeys = SigningKeyCache()

    public init(credentials: CredentialStore) { self.credentials = credentials }

    public func verify(_ request: SignedRequest, now: Date = Date()) -> Result<Signer, LedgerError> {
        checkHeaders(request, now: now).flatMap { verifySignature($0, of: request) }
    }

    /// The header stage: everything that can be refused without the body. `request.body` is not read.
    public func checkHeaders(_ request: SignedRequest, now: Date = Date()) -> Result<SignatureClaim, LedgerError> {
        guard let authorization = request.header("authorization") else {
            return .failure(LedgerError(.missingAuthenticationToken, "Missing Authentication Token"))
        }
        guard let parsed = AuthorizationHeader(authorization) else {
            return .failure(
                LedgerError(
                    .incompleteSignature,
                    "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' with algorithm AWS4-HMAC-SHA256"))
        }
        guard let amzDate = request.header("x-amz-date"), let signedAt = AmzDate.parse(amzDate) else {
            return .failure(LedgerError(.incompleteSignature, "Authorization header requires existence of a valid 'X-Amz-Date' header"))
        }
        let scope = parsed.credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard scope.count == 5, scope[4] == "aws4_request", !scope[2].isEmpty else {
            return .failure(LedgerError(.incompleteSignature, "Credential should be scoped to a valid region and service"))
        }
        let (accessKeyId, date, region, service) = (scope[0], scope[1], scope[2], scope[3])
        guard let key = credentials[accessKeyId] else {
            return .failure(LedgerError(.unrecognizedClient, "The security token included in the request is invalid."))
        }
        guard service == self.service else {
            return .failure(LedgerError(.invalidSignature, "Credential should be scoped to correct service: '\(self.service)'."))
        }
        guard amzDate.hasPrefix(date) else {
            return .failure(
                LedgerError(.invalidSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP"))
        }
        guard abs(signedAt.timeIntervalSince(now)) <= allowedSkew else {
            return .failure(
                LedgerError(
                    .invalidSignature,
                    "Signature expired: \(amzDate) is now earlier or later than the 5 minutes allowed around the server time"))
        }
        guard parsed.signedHeaders.contains("host"), parsed.signedHeaders.allSatisfy({ request.header($0) != nil }) else {
            return .failure(LedgerError(.invalidSignature, "The request signature we calculated does not match the signature you provided."))
        }
        return .success(
            SignatureClaim(
                key: key, region: region, date: date, amzDate: amzDate,
                signedHeaders: parsed.signedHeaders, signature: parsed.signature))
    }

    /// The final stage: the signature over the whole request, body included, with the claimed key's secret.
    public func verifySignature(_ claim: SignatureClaim, of request: SignedRequest) -> Result<Signer, LedgerError> {
        let canonical = SigV4.canonicalRequest(request, signedHeaders: claim.signedHeaders)
        let stringToSign = [
            "AWS4-HMAC-SHA256", claim.amzDate, "\(claim.date)/\(claim.region)/\(service)/aws4_request",
            SHA256.hash(data: Data(canonical.utf8)).hexString,
        ].joined(separator: "\n")
        let signingKey = signingKeys.key(secret: claim.key.secretAccessKey, date: claim.date, region: claim.region, service: service)
        let expected = HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: signingKey).hexString
        guard Self.constantTimeEqual(expected, claim.signature) else {
            return .failure(
                LedgerError(
                    .invalidSignature,
                    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
                ))
        }
        return .success(Signer(key: claim.key, region: claim.region))
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in x.indices { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}

/// `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`
struct AuthorizationHeader {
    let credential: String
    let signedHeaders: [String]
    let signature: String

    init?(_ header: String) {
        let prefix = "AWS4-HMAC-SHA256 "
        guard header.hasPrefix(prefix) else { return nil }
        var fields: [String: String] = [:]
        for part in header.dropFirst(prefix.count).split(separator: ",") {
            let field = Self.trimmingBlanks(part)
            guard let equals = field.firstIndex(of: "="), equals != field.startIndex, equals != field.index(before: field.endIndex)
            else { return nil }
            fields[String(field[..<equals])] = String(field[field.index(after: equals)...])
        }
        guard let credential = fields["Credential"], let signedHeaders = fields["SignedHeaders"],
            let signature = fields["Signature"], !signedHeaders.isEmpty, !signature.isEmpty
        else { return nil }
        self.credential = credential
        self.signedHeaders = signedHeaders.split(separator: ";").map { $0.lowercased() }
        self.signature = signature
    }

    /// `part` without its leading and trailing spaces and tabs. (A slice of the header, not a copy: this
    /// runs for every request.)
    private static func trimmingBlanks(_ part: Substring) -> Substring {
        let isBlank = { (c: Character) in c == " " || c == "\t" }
        guard let first = part.firstIndex(where: { !isBlank($0) }), let last = part.lastIndex(where: { !isBlank($0) }) else { return "" }
        return part[first...last]
    }
}

/// Derived SigV4 signing keys by secret, date, region and service: deriving one takes four HMACs, and
/// a client signs every request of a day with the same key. Bounded: emptied when it holds 1,024.
final class SigningKeyCache: Sendable {
    /// The keys' bytes (`SymmetricKey` is not `Sendable`).
    private let keys = Mutex<[String: [UInt8]]>([:])

    func key(secret: String, date: String, region: String, service: String) -> SymmetricKey {
        let name = [secret, date, region, service].joined(separator: "\u{0}")
        if let bytes = keys.withLock({ $0[name] }) { return SymmetricKey(data: bytes) }
        let key = SigV4.signingKey(secret: secret, date: date, region: region, service: service)
        let bytes = key.withUnsafeBytes { Array($0) }
        keys.withLock { keys in
            if keys.count >= 1024 { keys.removeAll() }
            keys[name] = bytes
        }
        return key
    }
}

/// What signing and verifying share: the canonical request and the signing key of Signature Version 4.
enum SigV4 {
    static func canonicalRequest(_ request: SignedRequest, signedHeaders: [String]) -> String {
        let headers = signedHeaders.map { name in
            let value = request.header(name) ?? ""
            return "\(name):\(collapsingBlanks(value))"
        }
        return [
            request.method.uppercased(),
            canonicalPath(request.path),
            canonicalQuery(request.query),
            headers.joined(separator: "\n") + "\n",
            signedHeaders.joined(separator: ";"),
            SHA256.hash(data: request.body).hexString,
        ].joined(separator: "\n")
    }

    /// A header value as SigV4 signs it: trimmed, each run of spaces and tabs one space. (Most values
    /// have nothing to collapse, and are returned as they are: this runs for every signed header.)
    static func collapsingBlanks(_ value: String) -> String {
        let bytes = value.utf8
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var previousBlank = true  // a blank first is a leading blank
        var clean = true
        for byte in bytes {
            let blank = isBlank(byte)
            if blank && (previousBlank || byte != UInt8(ascii: " ")) {
                clean = false
                break
            }
            previousBlank = blank
        }
        if (clean && !previousBlank) || bytes.isEmpty { return value }
        return value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    static func canonicalPath(_ path: String) -> String {
        guard !path.isEmpty else { return "/" }
        return path.split(separator: "/", omittingEmptySubsequences: false)
            .map { uriEncode(String($0).removingPercentEncoding ?? String($0)) }
            .joined(separator: "/")
    }

    static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        return query.split(separator: "&").map { pair -> (String, String) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let decode = { (s: String) in s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? s }
            return (uriEncode(decode(parts[0])), uriEncode(decode(parts.count > 1 ? parts[1] : "")))
        }.sorted { $0 < $1 }.map { "\($0)=\($1)" }.joined(separator: "&")
    }

    /// RFC 3986 encoding as SigV4 wants it: unreserved characters as they are, the rest %XX.
    static func uriEncode(_ value: String) -> String {
        var out = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    static func signingKey(secret: String, date: String, region: String, service: String) -> SymmetricKey {
        var key = SymmetricKey(data: Data(("AWS4" + secret).utf8))
        for part in [date, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }
}
