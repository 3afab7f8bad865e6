import EmbeddedPostgres
import Foundation
import Logging
import Postgres

/// Where a command's database is: a `--database-url`, or else the embedded cluster under `--data-dir`.
public struct DatabaseTarget: Sendable {
    /// The libpq connection string to use.
    public let conninfo: String
    /// The embedded cluster, when there is no database URL.
    public let embedded: EmbeddedPostgres?
    /// True when `close` stops the embedded cluster.
    public let stopsOnClose: Bool

    /// Uses `databaseURL` when given; otherwise starts (or joins) the embedded cluster.
    ///
    /// - Parameter ownsCluster: stop the embedded cluster on `close` even when it was already running
    ///   (`serve` takes over a cluster that a killed server left behind); otherwise stop it only when
    ///   this process started it, so a CLI command never stops a running server's database.
    public static func open(
        databaseURL: String?, dataDirectory: String, ownsCluster: Bool = false, logger: Logger
    ) async throws -> DatabaseTarget {
        if let databaseURL, !databaseURL.isEmpty {
            return DatabaseTarget(conninfo: databaseURL, embedded: nil, stopsOnClose: false)
        }
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let cluster = try EmbeddedPostgres(dataDirectory: dataDirectory)
        let wasRunning = try cluster.isRunning()
        logger.info("using the embedded PostgreSQL", metadata: ["directory": "\(cluster.clusterDirectory.path)"])
        let conninfo = try await cluster.start()
        return DatabaseTarget(conninfo: conninfo, embedded: cluster, stopsOnClose: ownsCluster || !wasRunning)
    }

    /// Stops the embedded cluster if this process owns it.
    public func close(logger: Logger) {
        guard stopsOnClose, let embedded else { return }
        do {
            try embedded.stop()
        } catch {
            logger.error("could not stop the embedded PostgreSQL", metadata: ["error": "\(error)"])
        }
    }
}
