import AsyncHTTPClient
import Foundation
import LedgerDomain
import ServiceLifecycle

/// What upstream mode needs: where the upstream is, who the ledger is to it, and how unsettled
/// commands are retried.
public struct UpstreamSettings: Sendable {
    public var client: UpstreamClient.Configuration
    public var identity: UpstreamIdentity
    public var retryPolicy: RetryPolicy
    /// The background reconciler; nil: none in this process (`faceledger reconcile` runs it).
    public var reconciler: Reconciler.Configuration?

    public init(
        client: UpstreamClient.Configuration, identity: UpstreamIdentity, retryPolicy: RetryPolicy = RetryPolicy(),
        reconciler: Reconciler.Configuration? = Reconciler.Configuration()
    ) {
        self.client = client
        self.identity = identity
        self.retryPolicy = retryPolicy
        self.reconciler = reconciler
    }

    /// A command's lease: one whole call to the upstream and the two database steps around it, with
    /// a second to spare. Nobody else calls the upstream for the command before it runs out.
    public func lease(deadline: Duration) -> Duration {
        client.connectTimeout + client.requestTimeout + deadline * 2 + .seconds(1)
    }
}

/// Closes the upstream's pooled connections when the service group shuts down.
struct UpstreamClientService: Service {
    let client: UpstreamClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
