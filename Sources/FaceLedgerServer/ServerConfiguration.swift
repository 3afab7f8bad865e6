import Foundation
import LedgerService
import ServiceLifecycle

/// What `faceledger serve` needs to run.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var credentials: CredentialStore
    /// Commands that may wait for the processor before new ones get ProvisionedThroughputExceededException.
    public var maxPendingCommands: Int
    /// Request-body bytes read or held at once, all requests together; a body the budget cannot take
    /// gets 503 at once. Nil: `FACELEDGER_MAX_BODY_BYTES_IN_FLIGHT`, else 256 MiB (see `BodyBudget`).
    public var maxBodyBytesInFlight: Int? = nil
    /// How long a connection may stay silent (between requests, or in the middle of one) before it
    /// is closed. Nil: `FACELEDGER_IDLE_TIMEOUT` (seconds), else 60 seconds.
    public var idleTimeout: Duration? = nil
    /// How long a request may wait for the database before it is answered 503 (lock waits, queued
    /// commands, connecting).
    public var requestDeadline: Duration
    /// Where `GET /metrics` reads the process's metrics; nil: no `/metrics` (404).
    public var metrics: ServerMetrics? = nil
    /// The certificate chain and private key (PEM files) to serve `https://` with; nil: plain HTTP.
    public var tls: (certificateChain: String, privateKey: String)? = nil
    /// Upstream mode: the endpoint the ledger stands in front of; nil: the embedded engine.
    public var upstream: UpstreamSettings? = nil
    /// The tracing exporter (`TraceExport`), run with the server so it flushes at shutdown; nil: no tracing.
    public var traceExport: (any Service)? = nil
    /// The key-encryption keys of the biometrics (`Biometrics`); nil only where nothing is served
    /// (tests of the configuration): `buildApplication` refuses to start without them.
    public var masterKeys: MasterKeys? = nil
    public init(
        host: String = "127.0.0.1", port: Int = 8080, credentials: CredentialStore, maxPendingCommands: Int = 10_000,
        requestDeadline: Duration = .seconds(5)
    ) {
        self.requestDeadline = requestDeadline
        self.host = host
        self.port = port
        self.credentials = credentials
        self.maxPendingCommands = maxPendingCommands
    }
}
