import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import LedgerDomain
import LedgerService
import Metrics
import NIOCore
import Postgres

/// What the operational routes read.
struct OperationalState: Sendable {
    let pool: PostgresPool
    let readModels: ReadModels
    let processor: CommandProcessor
    let pending: PendingCommands
    /// Whether the reconciler's backlog is a metric (upstream mode).
    let upstream: Bool
}

extension Router<LedgerRequestContext> {
    /// `GET /health`, `/ready`, `/status`, and `/metrics` when `metrics` is given.
    func addOperationalRoutes(_ state: OperationalState, metrics: ServerMetrics?) {
        let (pool, readModels, processor, pending) = (state.pool, state.readModels, state.processor, state.pending)
        // Alive while the process runs, unless the embedded PostgreSQL it runs is gone: nothing in this
        // process starts it again (a new `serve` does).
        get("/health") { _, _ in DatabaseTarget.servedClusterIsDown() ? HTTPResponse.Status.serviceUnavailable : .ok }
        // Ready: the database answers, its schema is this binary's, and the projector is not far behind
        // (reads would answer stale). The body says why not, for an operator's curl.
        get("/ready") { _, _ -> Response in
            func answer(_ status: HTTPResponse.Status, _ reason: String) -> Response {
                Response(
                    status: status, headers: [.contentType: "text/plain; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: reason + "\n")))
            }
            if DatabaseTarget.servedClusterIsDown() { return answer(.serviceUnavailable, "the embedded PostgreSQL is not running") }
            do {
                let schema = try await pool.query("SELECT coalesce(max(version), 0) FROM schema_migrations")[0].decode(Int.self, at: 0)
                if let latest = Migrations.all.last?.version, schema < latest {
                    return answer(.serviceUnavailable, "migrations are pending: the database is at \(schema), this server needs \(latest)")
                }
                let lag = try await readModels.projectorLag()
                if lag.seconds > ReadinessLimits.projectorLagSeconds {
                    return answer(.serviceUnavailable, "the projector is \(lag.events) events (\(Int(lag.seconds)) s) behind")
                }
                return answer(.ok, "ready")
            } catch {
                return answer(.serviceUnavailable, "the database does not answer")
            }
        }
        // Operational state: how far the projector trails the log.
        get("/status") { _, _ -> Response in
            do {
                let lag = try await readModels.projectorLag()
                let body = JSONValue.object([
                    "projector": .object([
                        "checkpoint": .integer(Int(lag.checkpoint)), "head": .integer(Int(lag.head)),
                        "lag_events": .integer(Int(lag.events)), "lag_seconds": .number(lag.seconds),
                    ]),
                    "write_side": .object([
                        "position": .integer(Int(processor.committedPosition)),
                        "queued": .integer(processor.queuedCount),
                    ]),
                ])
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: body.data)))
            } catch {
                return Response(status: .serviceUnavailable)
            }
        }
        guard let metrics else { return }
        let upstream = state.upstream
        get("/metrics") { _, _ -> Response in
            // Gauges that are cheaper to read when scraped than to keep up to date.
            Gauge(label: "faceledger_commands_queued").record(processor.queuedCount)
            if let lag = try? await readModels.projectorLag() {
                Gauge(label: "faceledger_projector_lag_events").record(lag.events)
                Gauge(label: "faceledger_projector_lag_seconds").record(lag.seconds)
            }
            let usage = pool.usage
            Gauge(label: "faceledger_pool_connections_open").record(usage.open)
            Gauge(label: "faceledger_pool_connections_in_use").record(usage.inUse)
            Gauge(label: "faceledger_pool_waiting").record(usage.waiting)
            if upstream, let backlog = try? await pending.count() {
                Gauge(label: "faceledger_reconciler_backlog").record(backlog)
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
        }
    }
}
