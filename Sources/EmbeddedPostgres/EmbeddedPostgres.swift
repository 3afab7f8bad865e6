import Foundation
import Postgres

/// A private PostgreSQL cluster under `<data-dir>/pg`: the embedded default, so a newcomer needs no
/// database set-up.
///
/// The cluster listens on a unix socket inside its own directory only (no TCP), trusts local
/// connections, and keeps its data across restarts. Run as root, it runs as the `postgres` system
/// user, since PostgreSQL refuses to run as root.
public struct EmbeddedPostgres: Sendable {
    /// The cluster's directory (PGDATA), which also holds its socket and log.
    public let clusterDirectory: URL
    /// The database FaceLedger uses inside the cluster.
    public let databaseName = "faceledger"
    private let port = 5432
    private let binaries: ServerBinaries
    private let runner: CommandRunner

    /// Finds PostgreSQL's server programs; fails with a clear message naming the package to install.
    ///
    /// - Parameters:
    ///   - dataDirectory: FaceLedger's data directory; the cluster lives in its `pg` folder.
    ///   - binarySearchPaths: where to look for `initdb` and `pg_ctl`; by default `PATH` and the
    ///     usual install locations (`/usr/lib/postgresql/*/bin`, …).
    public init(dataDirectory: String, binarySearchPaths: [String]? = nil) throws {
        let dataURL = URL(fileURLWithPath: dataDirectory, isDirectory: true).standardizedFileURL
        clusterDirectory = dataURL.appendingPathComponent("pg", isDirectory: true)
        binaries = try ServerBinaries.find(in: binarySearchPaths ?? ServerBinaries.defaultSearchPaths())
        runner = try CommandRunner.forCurrentUser()
        let socketPath = clusterDirectory.path + "/.s.PGSQL.\(port)"
        guard socketPath.utf8.count < 108 else {
            throw EmbeddedPostgresError("the data directory path is too long for a unix socket (\(socketPath)); choose a shorter --data-dir")
        }
    }

    /// FaceLedger's data directory: the cluster's parent, which also holds the lock files.
    public var dataDirectory: URL { clusterDirectory.deletingLastPathComponent() }

    /// Claims the data directory for one `serve` for as long as the lock is held (the process's life):
    /// two servers on one embedded cluster would stop it under each other. Fails, naming the data
    /// directory and the process that holds it, when another live `serve` has it.
    public func claimForServer() throws -> FileLock {
        let path = dataDirectory.appendingPathComponent("serve.lock").path
        guard let lock = try FileLock.tryAcquire(path, exclusive: true) else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            throw EmbeddedPostgresError(
                "another faceledger serve (\(holder.flatMap { $0.isEmpty ? nil : $0 } ?? "pid unknown")) is using the embedded "
                    + "PostgreSQL in \(dataDirectory.path); stop it first, or start this one with another --data-dir or a --database-url")
        }
        lock.record("pid \(getpid())\n")
        return lock
    }

    /// Registers this process as a user of the cluster while the returned (shared) lock is held.
    /// Waits while another process is stopping the cluster, then `start()` starts it again.
    public func use() async throws -> FileLock {
        try await FileLock.acquire(dataDirectory.appendingPathComponent("pg.lock").path, exclusive: false)
    }

    /// Stops the cluster unless another process uses it (holds its `use()` lock too); true if stopped.
    /// The exclusive lock is kept until `usage` is released, so nobody starts using it meanwhile.
    @discardableResult
    public func stopUnlessUsed(usage: FileLock) throws -> Bool {
        guard usage.tryUpgrade() else { return false }
        try stop()
        return true
    }

    /// True while the cluster's postmaster runs (its pid file names a live process). No subprocess:
    /// cheap enough for every `/health` request.
    public func postmasterIsAlive() -> Bool {
        let pidFile = clusterDirectory.appendingPathComponent("postmaster.pid").path
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = text.split(separator: "\n").first.flatMap({ pid_t($0.trimmingCharacters(in: .whitespaces)) }), pid > 0
        else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// The libpq connection string of the cluster's FaceLedger database.
    public var conninfo: String {
        "host=\(Self.quote(clusterDirectory.path)) port=\(port) user=postgres dbname=\(databaseName)"
    }

    /// Initialises the cluster on first use, starts it unless it is already running (left over from a
    /// process that was killed, say), and creates the FaceLedger database. Returns the conninfo.
    @discardableResult
    public func start() async throws -> String {
        // One process at a time initialises and starts the cluster: two concurrent `pg_ctl start`s fail.
        let starting = try await FileLock.acquire(dataDirectory.appendingPathComponent("pg.start.lock").path, exclusive: true)
        defer { starting.release() }
        // initdb and pg_ctl take seconds: wait for them on a thread of their own, not on Swift's pool.
        try await onOwnThread { [self] in
            try prepareDirectory()
            if !FileManager.default.fileExists(atPath: clusterDirectory.appendingPathComponent("PG_VERSION").path) {
                try initialise()
            }
            if !(try isRunning()) {
                try runner.run(
                    binaries.pgCtl,
                    [
                        "-D", clusterDirectory.path, "-l", clusterDirectory.appendingPathComponent("postgres.log").path,
                        "-w", "-t", "60", "start",
                    ], failure: "could not start the embedded PostgreSQL (see \(clusterDirectory.path)/postgres.log)")
            }
        }
        try await createDatabaseIfMissing()
        return conninfo
    }

    private func onOwnThread(_ work: @escaping @Sendable () throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread { continuation.resume(with: Result(catching: work)) }.start()
        }
    }

    /// Stops the cluster (fast shutdown: connections are closed, nothing committed is lost).
    public func stop() throws {
        guard try isRunning() else { return }
        try runner.run(
            binaries.pgCtl, ["-D", clusterDirectory.path, "-m", "fast", "-w", "-t", "60", "stop"],
            failure: "could not stop the embedded PostgreSQL")
    }

    /// Restarts the cluster, as an operator's `pg_ctl restart` would.
    public func restart() throws {
        try runner.run(
            binaries.pgCtl,
            [
                "-D", clusterDirectory.path, "-l", clusterDirectory.appendingPathComponent("postgres.log").path,
                "-m", "fast", "-w", "-t", "60", "restart",
            ], failure: "could not restart the embedded PostgreSQL")
    }

    /// True when a postmaster is running on the cluster directory.
    public func isRunning() throws -> Bool {
        guard FileManager.default.fileExists(atPath: clusterDirectory.appendingPathComponent("PG_VERSION").path)
        else { return false }
        return try runner.status(binaries.pgCtl, ["-D", clusterDirectory.path, "status"]) == 0
    }

    private func prepareDirectory() throws {
        let fileManager = FileManager.default
        if !fileManager.fileExists(atPath: clusterDirectory.path) {
            try fileManager.createDirectory(
                at: clusterDirectory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        }
        try runner.takeOwnership(of: clusterDirectory.path)
        guard try runner.status("/usr/bin/test", ["-w", clusterDirectory.path]) == 0 else {
            throw EmbeddedPostgresError(
                "the \(runner.serverUser ?? "current") user cannot write \(clusterDirectory.path); choose a --data-dir "
                    + "whose parent folders it can enter (for example one under /var/lib or /tmp)")
        }
    }

    private func initialise() throws {
        try runner.run(
            binaries.initdb,
            [
                "-D", clusterDirectory.path, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C",
            ], failure: "initdb failed for \(clusterDirectory.path)")
        // Only a unix socket inside the cluster directory: nothing listens on the network.
        let settings = """

            # FaceLedger embedded cluster
            listen_addresses = ''
            unix_socket_directories = '\(clusterDirectory.path.replacingOccurrences(of: "'", with: "''"))'
            port = \(port)
            max_connections = 200

            """
        let config = clusterDirectory.appendingPathComponent("postgresql.conf")
        let handle = try FileHandle(forWritingTo: config)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(settings.utf8))
    }

    private func createDatabaseIfMissing() async throws {
        try await PostgresConnection.with("host=\(Self.quote(clusterDirectory.path)) port=\(port) user=postgres dbname=postgres") {
            try await createDatabaseIfMissing(on: $0)
        }
    }

    private func createDatabaseIfMissing(on admin: PostgresConnection) async throws {
        let exists = try await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [.text(databaseName)])
        guard exists.isEmpty else { return }
        do {
            try await admin.run { [databaseName] session in
                // CREATE DATABASE takes no parameters; the name is this type's own constant.
                try session.executeScript("CREATE DATABASE \(databaseName)")
            }
        } catch let error as PostgresError where error.sqlState?.code == "42P04" || error.sqlState == .uniqueViolation {
            // Created meanwhile by another process: fine.
        }
    }

    /// Quotes a conninfo value (single quotes, backslash escapes).
    static func quote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }
}

/// A failure of the embedded cluster, with a message meant for the operator.
public struct EmbeddedPostgresError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
