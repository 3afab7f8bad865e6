import HummingbirdTesting
import LedgerService
import Logging
import TestSupport

@testable import FaceLedgerServer

/// The keys the test application accepts, one per role.
enum TestKeys {
    static let admin = AccessKey(
        accessKeyId: "AKIDHTTPADMIN", secretAccessKey: "admin-secret-0000000000000000000000000000",
        principal: "alice", role: .admin, requestsPerSecond: nil)
    static let writer = AccessKey(
        accessKeyId: "AKIDHTTPWRITER", secretAccessKey: "writer-secret-000000000000000000000000000",
        principal: "bob", role: .writer, requestsPerSecond: nil)
    static let auditor = AccessKey(
        accessKeyId: "AKIDHTTPAUDITOR", secretAccessKey: "auditor-secret-00000000000000000000000000",
        principal: "carol", role: .auditor, requestsPerSecond: nil)
    static let store = CredentialStore(keys: [admin, writer, auditor])
}

/// Runs `body` against the application `faceledger serve` runs, built by `buildApplication` on a fresh,
/// migrated database, with requests sent in process through its router (`app.test(.router)`).
///
/// The router test mode runs the application's services (the command processor and the projector)
/// for as long as `body` runs, and stops them gracefully afterwards: commands are written, and reads
/// wait for the projector, exactly as behind a socket.
func withLedgerApp<T: Sendable>(_ body: @Sendable (LedgerTestClient) async throws -> T) async throws -> T {
    try await TestDatabase.withFresh { conninfo in
        var configuration = ServerConfiguration(credentials: TestKeys.store)
        configuration.masterKeys = .ephemeral()
        var logger = Logger(label: "faceledger.http-tests")
        logger.logLevel = .warning
        let app = try await buildApplication(configuration: configuration, conninfo: conninfo, logger: logger)
        return try await app.test(.router) { client in
            try await body(LedgerTestClient(client: client))
        }
    }
}
