import Foundation
import LedgerDomain
import RekognitionWire
import Testing

@testable import FaceLedgerServer

@Suite("Signature Version 4")
struct SigV4Tests {
    static let example = AccessKey(
        accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        principal: "example", role: .writer, requestsPerSecond: nil)

    @Test("AWS's get-vanilla test vector verifies")
    func awsTestVector() throws {
        var verifier = SigV4Verifier(credentials: CredentialStore(keys: [Self.example]))
        verifier.service = "service"
        let request = SignedRequest(
            method: "GET", path: "/", query: "",
            headers: [
                ("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
                ),
            ], body: [])
        let now = try #require(AmzDate.parse("20150830T123600Z"))
        let signer = try verifier.verify(request, now: now).get()
        #expect(signer.key.principal == "example")
        #expect(signer.region == "us-east-1")

        var tampered = request
        tampered.body = Array("{}".utf8)
        #expect(
            throws: LedgerError(
                .invalidSignature,
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
        ) {
            try verifier.verify(tampered, now: now).get()
        }
    }

    @Test("what sign produces, verify accepts; skew, scope and keys are checked")
    func signAndVerify() throws {
        let verifier = SigV4Verifier(credentials: CredentialStore(keys: [Self.example]))
        let url = try #require(URL(string: "http://127.0.0.1:8080/"))
        let body = Array(#"{"CollectionId":"c"}"#.utf8)
        func request(
            signedAt: Date, secret: String = Self.example.secretAccessKey, service: String = "rekognition", key: String = "AKIDEXAMPLE"
        ) -> SignedRequest {
            let headers = SigV4Signer.sign(
                method: "POST", url: url,
                headers: [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "RekognitionService.ListUsers")],
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
        #expect(
            code(verifier.verify(SignedRequest(method: "POST", path: "/", query: "", headers: [], body: body), now: now))
                == .missingAuthenticationToken)
        #expect(
            code(verifier.verify(SignedRequest(method: "POST", path: "/", query: "", headers: [("Authorization", "Bearer x")], body: body), now: now))
                == .incompleteSignature)
    }
    @Test("the Authorization header's fields are read whatever blanks surround them, and a field without a name or value refuses it")
    func authorizationHeaderFields() throws {
        let header = try #require(
            AuthorizationHeader("AWS4-HMAC-SHA256 \tCredential=K/20150830/r/s/aws4_request ,SignedHeaders=Host;X-Amz-Date,\t Signature=ab=cd  "))
        #expect(header.credential == "K/20150830/r/s/aws4_request")
        #expect(header.signedHeaders == ["host", "x-amz-date"])
        #expect(header.signature == "ab=cd")
        for refused in [
            "AWS4-HMAC-SHA256 Credential=K, SignedHeaders=host, Signature=",
            "AWS4-HMAC-SHA256 Credential=K, SignedHeaders=host, =abc, Signature=s",
            "AWS4-HMAC-SHA256 Credential=K, SignedHeaders=host, Signature",
            "AWS4-HMAC-SHA256 Credential=K, SignedHeaders=host, , Signature=s",
            "AWS4-HMAC-SHA256 Credential=K, Signature=s",
            "AWS4-HMAC-SHA1 Credential=K, SignedHeaders=host, Signature=s",
        ] {
            #expect(AuthorizationHeader(refused) == nil, "\(refused)")
        }
    }

    @Test("a signed header's value is trimmed and its runs of blanks made one space, as SigV4 signs it")
    func collapsedHeaderValues() {
        for (value, signed) in [
            ("application/x-amz-json-1.1", "application/x-amz-json-1.1"), ("a b c", "a b c"), ("", ""), (" ", ""), ("\t", ""),
            (" a", "a"), ("a ", "a"), ("a  b", "a b"), ("a\tb", "a b"), ("a \t b", "a b"), ("\t a  b \t", "a b"), ("x", "x"),
        ] {
            #expect(SigV4.collapsingBlanks(value) == signed, "\(value.debugDescription)")
        }
    }

    @Test("derived signing keys are reused per secret, day and region, and each still verifies only its own")
    func cachedSigningKeys() throws {
        let other = AccessKey(
            accessKeyId: "AKIDOTHER", secretAccessKey: "another-secret", principal: "bob", role: .writer,
            requestsPerSecond: nil)
        let verifier = SigV4Verifier(credentials: CredentialStore(keys: [Self.example, other]))
        let url = try #require(URL(string: "http://127.0.0.1:8080/"))
        let body = Array(#"{"CollectionId":"c"}"#.utf8)
        func request(_ key: AccessKey, secret: String? = nil, region: String, at date: Date) -> SignedRequest {
            let headers = SigV4Signer.sign(
                method: "POST", url: url, headers: [("x-amz-target", "RekognitionService.ListUsers")], body: body,
                accessKeyId: key.accessKeyId, secretAccessKey: secret ?? key.secretAccessKey, region: region,
                service: "rekognition", now: date)
            return SignedRequest(method: "POST", path: "/", query: "", headers: headers + [("host", "127.0.0.1:8080")], body: body)
        }
        let today = Date()
        let yesterday = today.addingTimeInterval(-86_400)
        for _ in 0..<2 {  // the second round is served from the cache
            for key in [Self.example, other] {
                for region in ["eu-west-1", "us-east-1"] {
                    #expect((try? verifier.verify(request(key, region: region, at: today), now: today).get())?.key.accessKeyId == key.accessKeyId)
                    #expect((try? verifier.verify(request(key, region: region, at: yesterday), now: yesterday).get())?.region == region)
                    // Signed with the other key's secret: refused, cached key or not.
                    let forged = request(
                        key, secret: key.accessKeyId == other.accessKeyId ? Self.example.secretAccessKey : other.secretAccessKey,
                        region: region, at: today)
                    #expect((try? verifier.verify(forged, now: today).get()) == nil)
                }
            }
        }
    }
}

@Suite("SigV4 header stage, body limits and the byte budget")
struct AdmissionTests {
    static let writer = SigV4Tests.example
    static let auditor = AccessKey(
        accessKeyId: "AKIDAUDITOR", secretAccessKey: "auditor-secret", principal: "carol", role: .auditor,
        requestsPerSecond: nil)
    static let verifier = SigV4Verifier(credentials: CredentialStore(keys: [writer, auditor]))
    static let body = Array(#"{"CollectionId":"c","Faces":[{"Embedding":[1,2]}]}"#.utf8)

    /// A request signed over `body` as an SDK signs it, with `edit` applied to its headers afterwards.
    static func signed(
        key: AccessKey = writer, at date: Date, service: String = "rekognition",
        edit: (inout [(name: String, value: String)]) -> Void = { _ in }
    ) throws -> SignedRequest {
        let url = try #require(URL(string: "http://127.0.0.1:8080/"))
        var headers =
            SigV4Signer.sign(
                method: "POST", url: url, headers: [("x-amz-target", "FaceLedger.ImportFaces")], body: body,
                accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, region: "eu-west-1",
                service: service, now: date) + [("host", "127.0.0.1:8080")]
        edit(&headers)
        return SignedRequest(method: "POST", path: "/", query: "", headers: headers, body: body)
    }

    static func headerStage(_ request: SignedRequest, now: Date) -> ErrorCode? {
        var head = request
        head.body = []  // the header stage must not need it
        if case .failure(let error) = verifier.checkHeaders(head, now: now) { return error.code }
        return nil
    }

    @Test("the header stage admits a well-signed request without its body; the final stage checks the body")
    func twoStages() throws {
        let now = Date()
        let request = try Self.signed(at: now)
        var head = request
        head.body = []
        let claim = try Self.verifier.checkHeaders(head, now: now).get()
        #expect(claim.key.accessKeyId == Self.writer.accessKeyId)
        #expect(claim.region == "eu-west-1")
        #expect(try Self.verifier.verifySignature(claim, of: request).get().key.principal == "example")
        var tampered = request
        tampered.body = Array(#"{"CollectionId":"d","Faces":[{"Embedding":[1,2]}]}"#.utf8)
        #expect(throws: LedgerError.self) { try Self.verifier.verifySignature(claim, of: tampered).get() }
        // The same request that passes the header stage fails as a whole when its body was changed.
        #expect(throws: LedgerError.self) { try Self.verifier.verify(tampered, now: now).get() }
    }

    @Test("the header stage refuses what the headers alone show, with the errors AWS gives")
    func headerStageRefusals() throws {
        let now = Date()
        func without(_ name: String) -> (inout [(name: String, value: String)]) -> Void {
            { headers in headers.removeAll { $0.name.lowercased() == name } }
        }
        func replacing(_ name: String, _ transform: @escaping (String) -> String) -> (inout [(name: String, value: String)]) -> Void {
            { headers in headers = headers.map { $0.name.lowercased() == name ? ($0.name, transform($0.value)) : $0 } }
        }
        #expect(Self.headerStage(try Self.signed(at: now), now: now) == nil)
        #expect(Self.headerStage(try Self.signed(at: now, edit: without("authorization")), now: now) == .missingAuthenticationToken)
        #expect(
            Self.headerStage(try Self.signed(at: now, edit: replacing("authorization") { _ in "Bearer token" }), now: now)
                == .incompleteSignature)
        #expect(
            Self.headerStage(
                try Self.signed(
                    at: now,
                    edit: replacing("authorization") {
                        $0.replacingOccurrences(of: ", Signature=", with: ", Sig=")
                    }), now: now) == .incompleteSignature)
        #expect(Self.headerStage(try Self.signed(at: now, edit: without("x-amz-date")), now: now) == .incompleteSignature)
        #expect(
            Self.headerStage(try Self.signed(at: now, edit: replacing("x-amz-date") { _ in "yesterday" }), now: now)
                == .incompleteSignature)
        #expect(
            Self.headerStage(
                try Self.signed(
                    at: now,
                    edit: replacing("authorization") {
                        $0.replacingOccurrences(of: "/eu-west-1/", with: "//")
                    }), now: now) == .incompleteSignature)
        #expect(
            Self.headerStage(
                try Self.signed(
                    at: now,
                    edit: replacing("authorization") {
                        $0.replacingOccurrences(of: "AKIDEXAMPLE/", with: "AKIDUNKNOWN/")
                    }), now: now) == .unrecognizedClient)
        #expect(Self.headerStage(try Self.signed(at: now, service: "s3"), now: now) == .invalidSignature)
        #expect(
            Self.headerStage(
                try Self.signed(
                    at: now,
                    edit: replacing("authorization") {
                        $0.replacingOccurrences(
                            of: "Credential=AKIDEXAMPLE/\(AmzDate.format(now).prefix(8))/",
                            with: "Credential=AKIDEXAMPLE/19990101/")
                    }), now: now) == .invalidSignature)
        #expect(Self.headerStage(try Self.signed(at: now.addingTimeInterval(-301)), now: now) == .invalidSignature)
        #expect(Self.headerStage(try Self.signed(at: now.addingTimeInterval(301)), now: now) == .invalidSignature)
        #expect(Self.headerStage(try Self.signed(at: now.addingTimeInterval(-299)), now: now) == nil)
        // A header the signature covers must be there.
        #expect(Self.headerStage(try Self.signed(at: now, edit: without("x-amz-target")), now: now) == .invalidSignature)
    }

    @Test("only roles that may import get the 64 MiB limit; every other body may have 1 MiB")
    func bodyLimits() {
        #expect(Operation.importFaces.maxBodyBytes(for: .admin) == 64 << 20)
        #expect(Operation.importFaces.maxBodyBytes(for: .writer) == 64 << 20)
        #expect(Operation.importFaces.maxBodyBytes(for: .auditor) == 1 << 20)
        for operation in Operation.allCases where operation != .importFaces {
            for role in [Role.admin, .writer, .auditor] {
                #expect(operation.maxBodyBytes(for: role) == 1 << 20)
            }
        }
    }

    @Test("the byte budget never hands out more than it has, under concurrency, and takes back what is released")
    func budget() async {
        let budget = BodyBudget(capacity: 1000)
        #expect(budget.reserve(600))
        #expect(!budget.reserve(401))
        #expect(budget.reserve(400))
        #expect(!budget.reserve(1))
        budget.release(1000)
        #expect(budget.inUse == 0)
        #expect(!budget.reserve(1001))
        #expect(!budget.reserve(-1))

        let overdrawn = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    var overdrawn = false
                    for _ in 0..<1000 {
                        var reservation = BodyReservation(budget: budget)
                        if reservation.grow(to: 300), reservation.grow(to: 450) {
                            overdrawn = overdrawn || budget.inUse > budget.capacity
                        }
                        reservation.releaseAll()
                    }
                    return overdrawn
                }
            }
            return await group.contains(true)
        }
        #expect(!overdrawn)
        #expect(budget.inUse == 0)
    }

    @Test("the budget and the idle timeout: set, from the environment, or the default; bad values are errors")
    func configuration() throws {
        var configuration = ServerConfiguration(credentials: CredentialStore(keys: [Self.writer]))
        #expect(try configuration.resolvedMaxBodyBytesInFlight(environment: [:]) == 256 << 20)
        #expect(try configuration.resolvedIdleTimeout(environment: [:]) == .seconds(60))
        #expect(try configuration.resolvedMaxBodyBytesInFlight(environment: ["FACELEDGER_MAX_BODY_BYTES_IN_FLIGHT": "2097152"]) == 2 << 20)
        #expect(try configuration.resolvedIdleTimeout(environment: ["FACELEDGER_IDLE_TIMEOUT": "2.5"]) == .milliseconds(2500))
        #expect(throws: ServerConfigurationError.self) {
            try configuration.resolvedMaxBodyBytesInFlight(environment: ["FACELEDGER_MAX_BODY_BYTES_IN_FLIGHT": "lots"])
        }
        #expect(throws: ServerConfigurationError.self) {
            try configuration.resolvedMaxBodyBytesInFlight(environment: ["FACELEDGER_MAX_BODY_BYTES_IN_FLIGHT": "1000"])
        }
        #expect(throws: ServerConfigurationError.self) { try configuration.resolvedIdleTimeout(environment: ["FACELEDGER_IDLE_TIMEOUT": "0"]) }
        #expect(throws: ServerConfigurationError.self) { try configuration.resolvedIdleTimeout(environment: ["FACELEDGER_IDLE_TIMEOUT": "soon"]) }
        configuration.maxBodyBytesInFlight = 8 << 20
        configuration.idleTimeout = .seconds(5)
        #expect(try configuration.resolvedMaxBodyBytesInFlight(environment: ["FACELEDGER_MAX_BODY_BYTES_IN_FLIGHT": "2097152"]) == 8 << 20)
        #expect(try configuration.resolvedIdleTimeout(environment: ["FACELEDGER_IDLE_TIMEOUT": "1"]) == .seconds(5))
    }
}

@Suite("Credentials, pagination tokens, rate limits")
struct CredentialTests {
    @Test("the credentials file: roles, comments, optional rate, clear errors")
    func parse() throws {
        let store = try CredentialStore.parse(
            """
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
