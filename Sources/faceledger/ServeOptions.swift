import ArgumentParser
import Foundation
import Logging

/// How `serve` logs, and what it takes on: how long a request may wait for the database, how many
/// body bytes it holds at once, how long a silent connection stays open.
struct ServeOptions: ParsableArguments {
    @Option(
        name: .customLong("log-level"),
        help: "trace, debug, info, notice, warning, error or critical (default: info; env FACELEDGER_LOG_LEVEL).")
    var logLevel: Logger.Level?

    @Option(
        name: .customLong("log-format"),
        help: "text, or json for one JSON object a line (default: text; env FACELEDGER_LOG_FORMAT).")
    var logFormat: LogFormat?

    @Option(
        name: .customLong("request-deadline"),
        help:
            "Seconds a request may wait for the database (a lock, the command queue, connecting) before it is answered 503 ServiceUnavailableException (default: 5; env FACELEDGER_REQUEST_DEADLINE)."
    )
    var requestDeadline: Double?

    @Option(
        name: .customLong("max-body-bytes-in-flight"),
        help:
            "Bytes of request bodies read or held at once, all requests together; past it a request is answered 503 at once (default: 268435456; env FACELEDGER_MAX_BODY_BYTES_IN_FLIGHT)."
    )
    var maxBodyBytesInFlight: Int?

    @Option(
        name: .customLong("idle-timeout"),
        help: "Seconds a connection may stay silent, between requests or within one, before it is closed (default: 60; env FACELEDGER_IDLE_TIMEOUT).")
    var idleTimeout: Double?

    @Option(
        name: .customLong("otlp-endpoint"),
        help:
            "An OpenTelemetry collector's OTLP/HTTP endpoint (e.g. http://collector:4318) to send traces to; off when not given (env FACELEDGER_OTLP_ENDPOINT; OTEL_* variables refine it)."
    )
    var otlpEndpoint: String?

    /// The collector's URL, when tracing is on.
    func resolvedOTLPEndpoint() throws -> URL? {
        guard let text = otlpEndpoint ?? environmentValue(forFlag: "otlp-endpoint") else { return nil }
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
            throw ValidationError("--otlp-endpoint must be an http:// or https:// URL, got \(text)")
        }
        return url
    }

    /// The idle timeout from the flag (nil: the server reads its environment variable, else 60 s).
    func idleTimeoutDuration() throws -> Duration? {
        guard let idleTimeout else { return nil }
        guard idleTimeout.isFinite, idleTimeout > 0, idleTimeout <= 86_400 else {
            throw ValidationError("--idle-timeout must be more than 0 and at most 86400 seconds")
        }
        return .milliseconds(Int64((idleTimeout * 1000).rounded()))
    }

    /// How many commands may wait for the command processor: `FACELEDGER_MAX_PENDING_COMMANDS`, else 10,000.
    func resolvedMaxPendingCommands() throws -> Int {
        guard let text = environmentValue(forFlag: "max-pending-commands") else { return 10_000 }
        // 0 is allowed: every command is refused at once (reads go on), e.g. while an operator investigates.
        guard let count = Int(text), count >= 0 else {
            throw ValidationError("FACELEDGER_MAX_PENDING_COMMANDS must be a whole number, 0 or more")
        }
        return count
    }

    /// The deadline from the flag, else its environment variable, else 5 s.
    func resolvedDeadline() throws -> Duration {
        .seconds(try seconds(requestDeadline, flag: "request-deadline", default: 5, range: 0.1...3600))
    }
}
