import ArgumentParser
import EventLog
import FaceLedgerServer
import Hummingbird
import Postgres

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the FaceLedger service.",
        discussion: """
            Applies pending migrations, then prints `listening on http://HOST:PORT` once it accepts requests. \
            SIGINT or SIGTERM stop it gracefully; an embedded PostgreSQL it started is stopped too.
            """)

    @Option(help: "Address to listen on (default: 127.0.0.1; env FACELEDGER_HOST).")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free one (default: 8080; env FACELEDGER_PORT).")
    var port: Int?

    @OptionGroup var database: DatabaseOptions

    @Option(name: .customLong("credentials-file"),
            help: "Access keys: one `ACCESS_KEY_ID SECRET_ACCESS_KEY PRINCIPAL ROLE` per line (env FACELEDGER_CREDENTIALS_FILE).")
    var credentialsFile: String?

    @Option(help: "A Rekognition-compatible endpoint to put the ledger in front of (env FACELEDGER_UPSTREAM).")
    var upstream: String?

    func run() async throws {
        let logger = makeLogger()
        if (upstream ?? environmentValue(forFlag: "upstream")) != nil {
            throw ValidationError("--upstream is not available yet: upstream mode arrives with the reconciler.")
        }
        let portValue = try port ?? environmentValue(forFlag: "port").map {
            guard let port = Int($0) else { throw ValidationError("FACELEDGER_PORT is not a number") }
            return port
        } ?? 8080
        let configuration = ServerConfiguration(host: resolve(host, flag: "host", default: "127.0.0.1"), port: portValue)

        let target = try await database.open(ownsCluster: true, logger: logger)
        defer { target.close(logger: logger) }
        let migrator = try await PostgresConnection.connect(target.conninfo)
        let applied = try await Migrations.migrate(migrator)
        await migrator.close()
        if !applied.isEmpty { logger.info("applied migrations", metadata: ["versions": "\(applied)"]) }

        let pool = PostgresPool(conninfo: target.conninfo, maxConnections: 16)
        let app = buildApplication(configuration: configuration, pool: pool, logger: logger) { host, port in
            printLine("listening on http://\(host):\(port)")
        }
        try await app.runService()
        await pool.close()
    }
}
