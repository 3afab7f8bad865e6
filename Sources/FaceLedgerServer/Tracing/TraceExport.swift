import Foundation
import Instrumentation
import OTel
import ServiceLifecycle
import Tracing

/// Tracing, off unless `serve --otlp-endpoint` is given: spans go to an OpenTelemetry collector over
/// OTLP/HTTP (swift-otel). The `OTEL_*` variables of the OpenTelemetry specification refine it (for
/// example `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json`, `OTEL_TRACES_SAMPLER`).
public enum TraceExport {
    /// Makes the process's tracer export to `endpoint` (a collector's base URL, e.g.
    /// `http://collector:4318`; `/v1/traces` is added when it has no path). Returns the service that
    /// batches and sends spans: run it with the server, so it flushes at shutdown.
    public static func bootstrap(endpoint: URL, scheduleDelay: Duration = .seconds(1)) throws -> any Service {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "faceledger"
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.traces.otlpExporter.endpoint = tracesURL(endpoint)
        configuration.traces.batchSpanProcessor.scheduleDelay = scheduleDelay
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        return backend.service
    }

    /// The OTLP/HTTP traces URL of a collector endpoint.
    static func tracesURL(_ endpoint: URL) -> String {
        let text = endpoint.absoluteString
        guard endpoint.path.isEmpty || endpoint.path == "/" else { return text }
        return (text.hasSuffix("/") ? String(text.dropLast()) : text) + "/v1/traces"
    }
}

/// Reads W3C trace context (`traceparent`, `tracestate`) from a request's headers.
struct HeaderExtractor: Extractor {
    func extract(key: String, from carrier: [(name: String, value: String)]) -> String? {
        carrier.first { $0.name.lowercased() == key.lowercased() }?.value
    }
}

/// Writes trace context into an outgoing request's headers (calls to the upstream).
struct HeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [(name: String, value: String)]) {
        carrier.append((name: key, value: value))
    }
}
