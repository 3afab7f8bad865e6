import ArgumentParser
import EventLog
import FaceLedgerServer
import Hummingbird
import Logging
import Postgres

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the FaceLedger service.",
        discussion: """
            Applies pending migrations, then prints `listening on http://HOST:PORT` once it accepts requests. \
            SIGINT or SIGTERM stop it gracefully: in-flight requests finish, the projector catches up, and an \
            embedded PostgreSQL it runs is stopped (unless another command is still using it). One server per data \
            directory: a second `serve` on a data directory whose embedded PostgreSQL a live server uses refuses to \
            start. With --upstream the ledger stands in front of a Rekognition-compatible endpoint: ledgered commands \
            are recorded, executed upstream and settled (a background reconciler replays unsettled ones); every other \
            Rekognition operation is passed through. Without --credentials-file it creates <data-dir>/credentials (mode 0600) with one random admin key \
            on first start.
            """)

    @Option(help: "Address to listen on (default: 127.0.0.1; env FACELEDGER_HOST).")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free one (default: 8080; env FACELEDGER_PORT).")
    var port: Int?

    @OptionGroup var database: DatabaseOptions

    @Option(
        name: .customLong("credentials-file"),
        help: "Access keys: one `ACCESS_KEY_ID SECRET_ACCESS_KEY PRINCIPAL ROLE [rate=N]` per line (env FACELEDGER_CREDENTIALS_FILE).")
    var credentialsFile: String?

    @OptionGroup var upstream: UpstreamOptions

    @OptionGroup var options: ServeOptions

    @OptionGroup var transport: TransportOptions

    @OptionGroup var configFile: ConfigOptions

    @OptionGroup var masterKey: MasterKeyOptions

    func run() async throws {
        try configFile.apply(to: Self.self)
        let logger = makeLogger(level: options.logLevel, format: options.logFormat)
        let portValue =
            try port ?? environmentValue(forFlag: "port").map {
                guard let port = Int($0) else { throw ValidationError("FACELEDGER_PORT is not a number") }
                return port
            } ?? 8080
        let hostValue = resolve(host, flag: "host", default: "127.0.0.1")
        let tls = try transport.resolved(host: hostValue)
        let upstreamSettings = try upstream.settings()
        // Before the embedded PostgreSQL is set up, which takes seconds: a busy port is said at once.
        try PortProbe.check(host: hostValue, port: portValue)
        let (credentials, createdKey) = try loadCredentials()
        var configuration = ServerConfiguration(
            host: hostValue, port: portValue, credentials: credentials,
            maxPendingCommands: try options.resolvedMaxPendingCommands(),
            requestDeadline: try options.resolvedDeadline())
        configuration.maxBodyBytesInFlight = options.maxBodyBytesInFlight
        configuration.idleTimeout = try options.idleTimeoutDuration()
        configuration.metrics = ServerMetrics.bootstrap()
        configuration.tls = tls
        configuration.upstream = upstreamSettings
        configuration.masterKeys = try masterKey.resolved(database: database)
        if let collector = try options.resolvedOTLPEndpoint() {
            configuration.traceExport = try TraceExport.bootstrap(endpoint: collector)
            logger.info("tracing", metadata: ["otlp_endpoint": "\(collector)"])
        }

        let target = try await database.open(asServer: true, logger: logger)
        defer { target.close(logger: logger) }
        let applied = try await PostgresConnection.with(target.conninfo) { try await Migrations.migrate($0) }
        if !applied.isEmpty { logger.info("applied migrations", metadata: ["versions": "\(applied)"]) }

        let app = try await buildApplication(configuration: configuration, conninfo: target.conninfo, logger: logger) {
            scheme, host, port in
            printLine("listening on \(scheme)://\(host):\(port)")
            // Only now is the real address known (with --port 0, the real port).
            if let (key, file) = createdKey {
                logger.notice(
                    """
                    created an admin key in \(file) (mode 0600); use it like any AWS key, e.g. \
                    AWS_ACCESS_KEY_ID=\(key.accessKeyId) AWS_SECRET_ACCESS_KEY=$(awk '$1 == "\(key.accessKeyId)" {print $2}' \(file)) \
                    aws rekognition list-collections --region us-east-1 --endpoint-url \(scheme)://\(host):\(port)
                    """)
            }
        }
        try await app.runService()
    }

    /// The credentials file, or `<data-dir>/credentials` (created with one admin key if missing: then
    /// also that key and the file).
    private func loadCredentials() throws -> (CredentialStore, created: (AccessKey, file: String)?) {
        if let file = credentialsFile ?? environmentValue(forFlag: "credentials-file") {
            return (try CredentialStore.load(path: file), nil)
        }
        let directory = database.resolvedDataDirectory
        let (store, created) = try CredentialStore.loadOrCreateDefault(dataDirectory: directory)
        return (store, created.map { ($0, directory + "/credentials") })
    }
}
