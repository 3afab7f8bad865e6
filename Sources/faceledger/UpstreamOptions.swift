import ArgumentParser
import FaceLedgerServer
import Foundation
import LedgerDomain

/// Upstream mode's flags, shared by `serve` and `reconcile`. Credentials and region come from the
/// standard AWS variables and files (`UpstreamIdentity.resolve`).
struct UpstreamOptions: ParsableArguments {
    @Option(
        help:
            "A Rekognition-compatible endpoint to put the ledger in front of, e.g. https://rekognition.eu-west-1.amazonaws.com or another FaceLedger (env FACELEDGER_UPSTREAM)."
    )
    var upstream: String?

    @Option(
        name: .customLong("upstream-connect-timeout"),
        help: "Seconds opening a connection to the upstream may take (default: 3; env FACELEDGER_UPSTREAM_CONNECT_TIMEOUT).")
    var connectTimeout: Double?

    @Option(
        name: .customLong("upstream-timeout"),
        help:
            "Seconds one call to the upstream may take, answer included; past it the command's outcome is unknown and the reconciler resolves it (default: 30; env FACELEDGER_UPSTREAM_TIMEOUT)."
    )
    var requestTimeout: Double?

    @Option(
        name: .customLong("upstream-max-connections"),
        help: "Connections kept open to the upstream (default: 32; env FACELEDGER_UPSTREAM_MAX_CONNECTIONS).")
    var maxConnections: Int?

    @Option(
        name: .customLong("reconcile-interval"),
        help: "Seconds between the reconciler's passes (default: 1; env FACELEDGER_RECONCILE_INTERVAL).")
    var reconcileInterval: Double?

    @Option(
        name: .customLong("reconcile-grace"),
        help:
            "Seconds an unsettled command is left to the request that accepted it before the reconciler takes it (default: 10; env FACELEDGER_RECONCILE_GRACE)."
    )
    var reconcileGrace: Double?

    @Option(
        name: .customLong("reconcile-max-age"),
        help: "Seconds after its acceptance an unsettled command is abandoned (default: 86400; env FACELEDGER_RECONCILE_MAX_AGE).")
    var reconcileMaxAge: Double?

    /// The upstream's URL, when one is given.
    func endpoint() throws -> URL? {
        guard let text = upstream ?? environmentValue(forFlag: "upstream") else { return nil }
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
            throw ValidationError("--upstream must be an http:// or https:// URL, got \(text)")
        }
        return url
    }

    /// Everything upstream mode needs, or nil for the embedded engine.
    func settings(runReconciler: Bool = true) throws -> UpstreamSettings? {
        guard let endpoint = try endpoint() else { return nil }
        let identity: UpstreamIdentity
        do {
            identity = try UpstreamIdentity.resolve(environment: ProcessInfo.processInfo.environment, endpoint: endpoint)
        } catch {
            throw ValidationError("\(error)")
        }
        let year = 31_536_000.0
        let client = UpstreamClient.Configuration(
            endpoint: endpoint,
            connectTimeout: .seconds(try seconds(connectTimeout, flag: "upstream-connect-timeout", default: 3, range: 0.001...year)),
            requestTimeout: .seconds(try seconds(requestTimeout, flag: "upstream-timeout", default: 30, range: 0.001...year)),
            maxConnections: try count(maxConnections, flag: "upstream-max-connections", default: 32))
        let policy = RetryPolicy(
            base: 1, cap: 300,
            maxAge: try seconds(reconcileMaxAge, flag: "reconcile-max-age", default: 86_400, range: 0.001...year))
        let reconciler = Reconciler.Configuration(
            interval: .seconds(try seconds(reconcileInterval, flag: "reconcile-interval", default: 1, range: 0.001...year)),
            grace: .seconds(try seconds(reconcileGrace, flag: "reconcile-grace", default: 10, range: 0...year)))
        return UpstreamSettings(client: client, identity: identity, retryPolicy: policy, reconciler: runReconciler ? reconciler : nil)
    }

    private func count(_ given: Int?, flag: String, default defaultValue: Int) throws -> Int {
        let value =
            try given ?? environmentValue(forFlag: flag).map {
                guard let value = Int($0) else { throw ValidationError("\(environmentName(forFlag: flag)) is not a whole number") }
                return value
            } ?? defaultValue
        guard (1...10_000).contains(value) else { throw ValidationError("--\(flag) must be between 1 and 10000") }
        return value
    }
}
