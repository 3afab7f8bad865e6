import EmbeddedPostgres
import Foundation
import Logging
import Postgres
import Synchronization

/// Where a command's database is: a `--database-url`, or else the embedded cluster under `--data-dir`.
///
/// Every process that uses the embedded cluster holds a shared lock on `<data-dir>/pg.lock` while it
/// does, and `serve` also holds `<data-dir>/serve.lock` exclusively: a second server on the same data
/// directory is refused, and the cluster is only ever stopped by a process that gets `pg.lock`
/// exclusively, that is when no other live process uses it. The kernel drops the locks of a killed
/// process, so the next `serve` can still take over a cluster it left running.
public struct DatabaseTarget: Sendable {
    /// The libpq connection string to use.
    public let conninfo: String
    /// The embedded cluster, when there is no database URL.
    public let embedded: EmbeddedPostgres?
    /// True when `close` stops the embedded cluster (if no other process uses it).
    public let stopsOnClose: Bool
    private let serverClaim: FileLock?
    private let usage: FileLock?

    /// Uses `databaseURL` when given; otherwise starts (or joins) the embedded cluster.
    ///
    /// - Parameter asServer: for `serve`: claim the data directory (failing when another live `serve`
    ///   has it), report the cluster's loss on `/health`, and stop the cluster on `close` even when it
    ///   was already running (a killed server left it behind). Otherwise the cluster is stopped only
    ///   when this process started it. Either way, never while another process uses it.
    public static func open(
        databaseURL: String?, dataDirectory: String, asServer: Bool = false, logger: Logger
    ) async throws -> DatabaseTarget {
        if let databaseURL, !databaseURL.isEmpty {
            return DatabaseTarget(conninfo: databaseURL, embedded: nil, stopsOnClose: false, serverClaim: nil, usage: nil)
        }
        try DataDirectory.prepare(dataDirectory)
        let cluster = try EmbeddedPostgres(dataDirectory: dataDirectory)
        // The claim comes first: a refused server must not touch the cluster at all.
        let claim = asServer ? try cluster.claimForServer() : nil
        let usage = try await cluster.use()
        let wasRunning = try cluster.isRunning()
        logger.info("using the embedded PostgreSQL", metadata: ["directory": "\(cluster.clusterDirectory.path)"])
        let conninfo = try await cluster.start()
        if asServer { servedCluster.withLock { $0 = cluster } }
        return DatabaseTarget(
            conninfo: conninfo, embedded: cluster, stopsOnClose: asServer || !wasRunning,
            serverClaim: claim, usage: usage)
    }

    /// Stops the embedded cluster if this process owns it and no other process uses it; then lets go
    /// of the locks (the server's claim last, so a next server finds the cluster stopped).
    public func close(logger: Logger) {
        defer {
            usage?.release()
            serverClaim?.release()
        }
        guard stopsOnClose, let embedded, let usage else { return }
        do {
            if try !embedded.stopUnlessUsed(usage: usage) {
                logger.info("left the embedded PostgreSQL running: another process is using it")
            }
        } catch {
            logger.error("could not stop the embedded PostgreSQL", metadata: ["error": "\(error)"])
        }
    }

    /// True when this process serves from an embedded cluster whose postmaster is gone (stopped or
    /// crashed under it): nothing in the server starts it again, so `/health` says so and a supervisor
    /// restarts it (a new `serve` starts the cluster). It turns false again if an operator starts the
    /// cluster by hand. False with an external database, which may come back on its own.
    public static func servedClusterIsDown() -> Bool {
        guard let cluster = servedCluster.withLock({ $0 }) else { return false }
        return !cluster.postmasterIsAlive()
    }

    private static let servedCluster = Mutex<EmbeddedPostgres?>(nil)
}
