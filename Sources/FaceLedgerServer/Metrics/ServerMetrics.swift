import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import Prometheus

/// The process's metrics. Code everywhere records them through swift-metrics' API (`Counter`,
/// `Timer`, `Recorder`, `Gauge`); swift-prometheus is the backend that `GET /metrics` exports in the
/// Prometheus text format.
///
/// | metric | kind | labels |
/// | --- | --- | --- |
/// | `faceledger_requests_total` | counter | `operation`, `code` (`OK` or the AWS error code) |
/// | `faceledger_request_duration_seconds` | histogram | `operation` |
/// | `faceledger_command_batch_size` | histogram (commands per transaction) | |
/// | `faceledger_idempotent_replays_total` | counter | |
/// | `faceledger_commands_queued` | gauge (at scrape) | |
/// | `faceledger_projector_lag_events`, `faceledger_projector_lag_seconds` | gauges (at scrape) | |
/// | `faceledger_write_side_full_reloads` | gauge (at scrape) | |
public final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry

    private init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    /// Makes swift-metrics report into a Prometheus registry for the whole process. swift-metrics
    /// can be bootstrapped once per process: `serve` calls this once, at start.
    public static func bootstrap() -> ServerMetrics {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return ServerMetrics(registry: registry)
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    func exposition() -> [UInt8] { registry.emitToBuffer() }

    /// Counts one API exchange and its duration, by operation and outcome.
    static func recordExchange(target: String?, response: HTTPFields, duration: Duration) {
        let operation = (try? Operation.from(target: target))?.rawValue ?? "unknown"
        let code = response[HTTPField.Name("x-amzn-ErrorType")!] ?? "OK"
        Counter(label: "faceledger_requests_total", dimensions: [("operation", operation), ("code", code)]).increment()
        Timer(label: "faceledger_request_duration_seconds", dimensions: [("operation", operation)]).recordNanoseconds(
            duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}

/// The access log: one line per API exchange — request id, principal (as the key names it), operation,
/// status, error code, duration, client address. Never a key, a signature, a body or an embedding.
func logExchange(
    _ logger: Logger, target: String?, principal: String?, source: String?, response: Response, duration: Duration
) {
    let operation = (try? Operation.from(target: target))?.rawValue ?? "unknown"
    var metadata: Logger.Metadata = [
        "request_id": "\(response.headers[HTTPField.Name("x-amzn-RequestId")!] ?? "")",
        "operation": "\(operation)",
        "status": "\(response.status.code)",
        "code": "\(response.headers[HTTPField.Name("x-amzn-ErrorType")!] ?? "OK")",
        "duration_ms": "\(String(format: "%.3f", Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1000))",
    ]
    if let principal { metadata["principal"] = "\(principal)" }
    if let source { metadata["source"] = "\(source)" }
    logger.info("request", metadata: metadata)
}
