import Foundation
import LedgerDomain
import Testing

@testable import FaceLedgerServer

@Suite("Signature Version 4")
struct SigV4Tests {
    static let example = AccessKey(accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                   principal: "example", role: .writer, requestsPerSecond: nil)

    @Test("AWS's get-vanilla test vector verifies")
    func awsTestVector() throws {
        var verifier = SigV4Verifier(credentials: CredentialStore(keys: [Self.example]))
        verifier.service = "service"
        let request = SignedRequest(method: "GET", path: "/", query: "", headers: [
            ("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ], body: [])
        let now = try #require(SigV4Verifier.parseAmzDate("20150830T123600Z"))
        let signer = try verifier.verify(request, now: now).get()
        #expect(signer.key.principal == "example")
        #expect(signer.region == "us-east-1")

        var tampered = request
        tampered.body = Array("{}".utf8)
        #expect(throws: LedgerError(.invalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")) {
            try verifier.verify(tampered, now: now).get()
        }
    }

    @Test("what sign produces, verify accepts; skew, scope and keys are checked")
    func signAndVerify() throws {
        let verifier = SigV4Verifier(credentials: CredentialStore(keys: [Self.example]))
        let url = try #require(URL(string: "http://127.0.0.1:8080/"))
        let body = Array(#"{"CollectionId":"c"}"#.utf8)
        func request(signedAt: Date, secret: String = Self.example.secretAccessKey, service: String = "rekognition", key: String = "AKIDEXAMPLE") -> SignedRequest {
            let headers = SigV4Verifier.sign(method: "POST", url: url, headers: [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "RekognitionService.ListUsers")],
                                             body: body, accessKeyId: key, secretAccessKey: secret, region: "eu-west-1", service: service, now: signedAt)
            return SignedRequest(method: "POST", path: "/", query: "", headers: headers + [("host", "127.0.0.1:8080")], body: body)
        }
        let now = Date()
        #expect(try verifier.verify(request(signedAt: now), now: now).get().region == "eu-west-1")
        #expect(try verifier.verify(request(signedAt: now.addingTimeInterval(-290)), now: now).get().key.accessKeyId == "AKIDEXAMPLE")
        func code(_ result: Result<Signer, LedgerError>) -> ErrorCode? {
            if case .failure(let error) = result { return error.code }
            return nil
        }
        #expect(code(verifier.verify(request(signedAt: now.addingTimeInterval(-310)), now: now)) == .invalidSignature)
        #expect(code(verifier.verify(request(signedAt: now, secret: "wrong"), now: now)) == .invalidSignature)
        #expect(code(verifier.verify(request(signedAt: now, service: "s3"), now: now)) == .invalidSignature)
        #expect(code(verifier.verify(request(signedAt: now, key: "UNKNOWN"), now: now)) == .unrecognizedClient)
        #expect(code(verifier.verify(SignedRequest(method: "POST", path: "/", query: "", headers: [], body: body), now: now)) == .missingAuthenticationToken)
        #expect(code(verifier.verify(SignedRequest(method: "POST", path: "/", query: "", headers: [("Authorization", "Bearer x")], body: body), now: now)) == .incompleteSignature)
    }
}

@Suite("Credentials, pagination tokens, rate limits")
struct CredentialTests {
    @Test("the credentials file: roles, comments, optional rate, clear errors")
    func parse() throws {
        let store = try CredentialStore.parse("""
            # comment line
            AK1 s1 alice admin
            AK2 s2 bob writer rate=5   # trailing comment

            AK3 s3 carol auditor
            """, source: "creds")
        #expect(store["AK1"]?.role == .admin)
        #expect(store["AK2"]?.requestsPerSecond == 5)
        #expect(store["AK3"]?.principal == "carol")
        #expect(throws: CredentialsFileError.self) { try CredentialStore.parse("AK1 s1 alice root", source: "x") }
        #expect(throws: CredentialsFileError.self) { try CredentialStore.parse("AK1 s1 alice", source: "x") }
        #expect(throws: CredentialsFileError.self) { try CredentialStore.parse("AK1 s1 alice admin rate=0", source: "x") }
        #expect(throws: CredentialsFileError.self) { try CredentialStore.parse("# nothing", source: "x") }
    }

    @Test("a generated admin key file is private to its owner")
    func generated() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("creds-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (store, created) = try CredentialStore.loadOrCreateDefault(dataDirectory: directory)
        let key = try #require(created)
        #expect(store[key.accessKeyId]?.role == .admin)
        let mode = try FileManager.default.attributesOfItem(atPath: directory + "/credentials")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let (again, createdAgain) = try CredentialStore.loadOrCreateDefault(dataDirectory: directory)
        #expect(createdAgain == nil)
        #expect(again[key.accessKeyId]?.secretAccessKey == key.secretAccessKey)
    }

    @Test("pagination tokens round-trip and reject tampering, other operations and other collections")
    func tokens() throws {
        let tokens = PaginationTokens(secret: Array("secret".utf8))
        let token = tokens.make(operation: "ListUsers", collectionId: "c", lastKey: String(repeating: "u", count: 128))
        #expect(token.count <= 255)
        #expect(try tokens.read(token, operation: "ListUsers", collectionId: "c") == String(repeating: "u", count: 128))
        #expect(throws: LedgerError.self) { try tokens.read(token, operation: "ListFaces", collectionId: "c") }
        #expect(throws: LedgerError.self) { try tokens.read(token, operation: "ListUsers", collectionId: "d") }
        #expect(throws: LedgerError.self) { try tokens.read("x" + token, operation: "ListUsers", collectionId: "c") }
        #expect(throws: LedgerError.self) { try tokens.read("garbage", operation: "ListUsers", collectionId: "c") }
    }

    @Test("a rate-limited key may burst its rate, then one request per 1/rate seconds")
    func rateLimit() {
        let limiter = RateLimiter()
        let key = AccessKey(accessKeyId: "k", secretAccessKey: "s", principal: "p", role: .writer, requestsPerSecond: 2)
        let start = ContinuousClock.now
        #expect(limiter.admit(key, now: start))
        #expect(limiter.admit(key, now: start))
        #expect(!limiter.admit(key, now: start))
        #expect(limiter.admit(key, now: start + .milliseconds(500)))
        let unlimited = AccessKey(accessKeyId: "u", secretAccessKey: "s", principal: "p", role: .writer, requestsPerSecond: nil)
        #expect((0..<100).allSatisfy { _ in limiter.admit(unlimited, now: start) })
    }
}

@Suite("X-Amz-Date")
struct AmzDateTests {
    @Test("parses and formats like Foundation, across leap years and centuries; rejects malformed dates")
    func roundTrip() throws {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        for text in ["20150830T123600Z", "20000229T000000Z", "19700101T000000Z", "21000301T235959Z", "20261129T231500Z"] {
            let date = try #require(AmzDate.parse(text))
            #expect(date == formatter.date(from: text))
            #expect(AmzDate.format(date) == text)
        }
        for bad in ["2015-08-30T12:36:00Z", "20151330T123600Z", "20150830T123600", "2015083OT123600Z", ""] {
            #expect(AmzDate.parse(bad) == nil)
        }
    }
}
