import EmbeddedPostgres
import EventLog
import Foundation
import Postgres

/// Fresh databases for tests, on the PostgreSQL server the test set-up started.
///
/// `FACELEDGER_TEST_DATABASE_URL` names a database on that server that the tests may use to create
/// others (the test script sets it). Without it, the tests start an embedded cluster of their own
/// under the system's temporary folder, so a plain `swift test` works too.
public enum TestDatabase {
    /// Creates an empty database, runs `body` with its conninfo, then drops it.
    ///
    /// At most `DatabaseGate.limit` tests hold a database at once (the others wait their turn): a test
    /// holds several connections (a pool, a processor, a projector, sixteen writers), the tests run in
    /// parallel, and unbounded they exceeded the server's `max_connections` (100 by default) on a busy
    /// machine. A test must not call `withFresh` inside another.
    public static func withFresh<T>(migrated: Bool = true, _ body: (String) async throws -> T) async throws -> T {
        await DatabaseGate.shared.enter()
        do {
            let result = try await withFreshUngated(migrated: migrated, body)
            await DatabaseGate.shared.leave()
            return result
        } catch {
            await DatabaseGate.shared.leave()
            throw error
        }
    }

    private static func withFreshUngated<T>(migrated: Bool, _ body: (String) async throws -> T) async throws -> T {
        let server = try await ServerLocator.shared.adminConninfo()
        let name = "faceledger_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let admin = try await PostgresConnection.connect(server)
        // CREATE DATABASE takes no parameters; the name is generated above from hex digits only.
        try await admin.run { try $0.executeScript("CREATE DATABASE \(name)") }
        let conninfo = server + " dbname=\(name)"
        do {
            if migrated {
                let connection = try await PostgresConnection.connect(conninfo)
                try await Migrations.migrate(connection)
                await connection.close()
            }
            let result = try await body(conninfo)
            try? await admin.run { try $0.executeScript("DROP DATABASE \(name) WITH (FORCE)") }
            await admin.close()
            return result
        } catch {
            try? await admin.run { try $0.executeScript("DROP DATABASE \(name) WITH (FORCE)") }
            await admin.close()
            throw error
        }
    }

    /// A directory for a test's own files (world-traversable, so the `postgres` user can use it).
    public static func makeTemporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("faceledger-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        return url
    }
}

/// Lets at most `limit` tests hold a fresh database at once, first come first served.
actor DatabaseGate {
    static let limit = 4
    static let shared = DatabaseGate()
    private var available = limit
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func enter() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func leave() {
        if waiting.isEmpty {
            available += 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}

/// Finds (or starts, once per test process) the server the tests use.
actor ServerLocator {
    static let shared = ServerLocator()
    private var located: Task<String, any Error>?

    func adminConninfo() async throws -> String {
        if let located { return try await located.value }
        let task = Task { try await Self.locate() }
        located = task
        return try await task.value
    }

    private static func locate() async throws -> String {
        let conninfo: String
        if let url = ProcessInfo.processInfo.environment["FACELEDGER_TEST_DATABASE_URL"], !url.isEmpty {
            conninfo = url
        } else {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faceledger-swift-test-cluster")
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o755])
            let cluster = try EmbeddedPostgres(dataDirectory: directory.path)
            try await cluster.start()
            conninfo = cluster.conninfo
        }
        return conninfo
    }
}
