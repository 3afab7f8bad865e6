import Foundation
import Testing

@testable import FaceLedgerServer

@Suite("Upstream: credentials, region and the verdict on an exchange")
struct UpstreamTests {
    let rekognition = URL(string: "https://rekognition.eu-west-1.amazonaws.com")!
    let local = URL(string: "http://127.0.0.1:9000")!

    private func files(_ contents: [String: String]) -> (String) -> String? { { contents[$0] } }

    @Test("the environment's keys win, with the session token, and AWS_REGION before AWS_DEFAULT_REGION")
    func environment() throws {
        let identity = try UpstreamIdentity.resolve(
            environment: [
                "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token",
                "AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "us-east-1", "HOME": "/home/u",
            ], endpoint: local, readFile: files(["/home/u/.aws/credentials": "[default]\naws_access_key_id = OTHER\naws_secret_access_key = x\n"]))
        #expect(identity.credentials == AWSCredentials(accessKeyId: "AKID", secretAccessKey: "secret", sessionToken: "token"))
        #expect(identity.region == "us-west-2" && identity.source == "environment")
    }

    @Test("else the profile's keys from the shared credentials file, and its region from the config file")
    func profile() throws {
        let identity = try UpstreamIdentity.resolve(
            environment: ["HOME": "/home/u", "AWS_PROFILE": "ledger"], endpoint: local,
            readFile: files([
                "/home/u/.aws/credentials": """
                # keys
                [default]
                aws_access_key_id = DEFAULTKEY
                aws_secret_access_key = default-secret
                [ledger]
                aws_access_key_id = LEDGERKEY
                aws_secret_access_key = ledger-secret
                """,
                "/home/u/.aws/config": "[default]\nregion = us-east-1\n[profile ledger]\nregion = ap-south-1\n",
            ]))
        #expect(identity.credentials == AWSCredentials(accessKeyId: "LEDGERKEY", secretAccessKey: "ledger-secret"))
        #expect(identity.region == "ap-south-1")
        #expect(identity.source == "profile ledger in /home/u/.aws/credentials")
    }

    @Test("files named by AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE; keys in the config file count too")
    func namedFiles() throws {
        let identity = try UpstreamIdentity.resolve(
            environment: ["AWS_SHARED_CREDENTIALS_FILE": "/etc/none", "AWS_CONFIG_FILE": "/etc/aws-config"], endpoint: rekognition,
            readFile: files(["/etc/aws-config": "[default]\naws_access_key_id=CFGKEY\naws_secret_access_key=cfg\naws_session_token=t\n"]))
        #expect(identity.credentials == AWSCredentials(accessKeyId: "CFGKEY", secretAccessKey: "cfg", sessionToken: "t"))
        #expect(identity.region == "eu-west-1")  // from the endpoint's host
    }

    @Test("no credentials, or no region, is a clear error naming what to set")
    func missing() {
        #expect(throws: UpstreamConfigurationError.self) {
            try UpstreamIdentity.resolve(environment: ["HOME": "/nowhere"], endpoint: rekognition, readFile: { _ in nil })
        }
        do {
            _ = try UpstreamIdentity.resolve(
                environment: ["AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S"], endpoint: local,
                readFile: { _ in nil })
            Issue.record("resolved without a region")
        } catch {
            #expect("\(error)".contains("AWS_REGION"))
        }
    }

    private func answer(_ status: Int, type: String? = nil, header: String? = nil) -> UpstreamExchange {
        let body = type.map { Array("{\"__type\":\"\($0)\",\"message\":\"m\"}".utf8) } ?? Array("{}".utf8)
        return .answered(UpstreamAnswer(status: status, headers: header.map { [("x-amzn-ErrorType", $0)] } ?? [], body: body))
    }

    @Test("success settles, a client error settles as rejected, everything transient or unknown is retried")
    func verdicts() {
        #expect(UpstreamVerdict(answer(200)) == .succeeded)
        #expect(UpstreamVerdict(answer(400, type: "InvalidParameterException")) == .rejected(code: "InvalidParameterException"))
        #expect(
            UpstreamVerdict(answer(400, type: "com.amazonaws.rekognition#ResourceNotFoundException"))
                == .rejected(code: "ResourceNotFoundException"))
        #expect(
            UpstreamVerdict(answer(400, header: "IdempotentParameterMismatchException:http://internal.amazon.com/"))
                == .rejected(code: "IdempotentParameterMismatchException"))
        for transient in [
            "ThrottlingException", "ProvisionedThroughputExceededException", "UnrecognizedClientException",
            "AccessDeniedException", "ExpiredTokenException",
        ] {
            guard case .retry = UpstreamVerdict(answer(400, type: transient)) else {
                Issue.record("\(transient) should be retried")
                continue
            }
        }
        for status in [500, 502, 503, 429] {
            guard case .retry = UpstreamVerdict(answer(status, type: "Whatever")) else {
                Issue.record("\(status)")
                continue
            }
        }
        #expect(UpstreamVerdict(answer(404)) == .rejected(code: "HTTP404"))  // a proxy's page: final, not retried for a day
        guard case .retry = UpstreamVerdict(answer(408)) else {
            Issue.record("408")
            return
        }
        guard case .retry = UpstreamVerdict(.failed(reason: "reset", mayHaveReachedUpstream: true)) else {
            Issue.record("reset")
            return
        }
    }

    @Test("a request to a port where nobody listens fails as never sent")
    func refusedConnection() async throws {
        let client = UpstreamClient(
            configuration: .init(endpoint: URL(string: "http://127.0.0.1:1")!, connectTimeout: .seconds(2), requestTimeout: .seconds(5)),
            identity: UpstreamIdentity(
                credentials: AWSCredentials(accessKeyId: "K", secretAccessKey: "S"), region: "us-east-1",
                source: "test"))
        let exchange = await client.send(target: "RekognitionService.ListCollections", body: Array("{}".utf8))
        try await client.shutdown()
        guard case .failed(_, let mayHaveReachedUpstream) = exchange else {
            Issue.record("answered")
            return
        }
        #expect(!mayHaveReachedUpstream)
    }
}
