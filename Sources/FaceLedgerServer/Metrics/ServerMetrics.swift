import Foundation
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
}
