import Foundation
import LedgerDomain
import LedgerService
import Logging
import Metrics
import ServiceLifecycle

/// Settles what the client path left unsettled: commands whose upstream call failed passingly, whose
/// answer was lost, or whose process was killed mid-call. It replays them in the order they were
/// accepted, each under a lease (so two reconcilers, or a reconciler and a client's retry, never call
/// the upstream for one command at once), with exponential back-off and jitter, and abandons those
/// older than the retry policy's maximum age.
public struct Reconciler: Service {
    public struct Configuration: Sendable {
        /// How often a pass runs.
        public var interval: Duration
        /// Commands younger than this are left to the request that accepted them.
        public var grace: Duration

        public init(interval: Duration = .seconds(1), grace: Duration = .seconds(10)) {
            self.interval = interval
            self.grace = grace
        }
    }

    /// What one pass did.
    public struct PassSummary: Sendable, Hashable {
        public var settled = 0
        public var postponed = 0
        public var abandoned = 0
    }

    let gateway: UpstreamGateway
    let configuration: Configuration
    /// The region the ledger signs upstream requests in (CreateCollection's ARN before the answer gives one).
    let region: String
    let logger: Logger

    public init(gateway: UpstreamGateway, configuration: Configuration, region: String, logger: Logger) {
        self.gateway = gateway
        self.configuration = configuration
        self.region = region
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let summary = await pass(dueOnly: true)
                if summary != PassSummary() { logger.info("reconciler pass", metadata: ["summary": "\(summary)"]) }
                try await Task.sleep(for: configuration.interval)
            }
        }
    }

    /// Claims and handles unsettled commands past the grace period, until none is left to claim.
    ///
    /// - Parameter dueOnly: leave commands whose next attempt is not due yet (false for an
    ///   operator's `reconcile --once`, which tries every one now).
    public func pass(dueOnly: Bool) async -> PassSummary {
        var summary = PassSummary()
        let owner = UUID()
        var seen: Set<UUID> = []
        while !Task.isCancelled {
            let claimed: [PendingUpstreamCommand]
            do {
                // One at a time: a lease is taken right before its command's call, never queued behind others.
                claimed = try await gateway.pending.claimDue(
                    owner: owner, for: gateway.configuration.lease, grace: configuration.grace,
                    limit: 1, dueOnly: dueOnly, excluding: seen)
            } catch {
                logger.warning("reconciler cannot read pending commands", metadata: ["error": "\(error)"])
                return summary
            }
            guard !claimed.isEmpty else { return summary }
            for command in claimed {
                seen.insert(command.commandId)
                switch await handle(command, owner: owner) {
                case .settled: summary.settled += 1
                case .postponed: summary.postponed += 1
                case .abandoned: summary.abandoned += 1
                }
            }
        }
        return summary
    }

    private enum Handled { case settled, postponed, abandoned }

    private func handle(_ command: PendingUpstreamCommand, owner: UUID) async -> Handled {
        let policy = gateway.configuration.retryPolicy
        let ledgered: LedgerCommand
        do {
            ledgered = try LedgerAPI.ledgeredCommand(operation: command.operation, body: command.body, region: region)
        } catch {
            return await abandon(command, owner: owner, reason: "its stored request cannot be read: \(error)")
        }
        if Date().timeIntervalSince(command.acceptedAt) >= policy.maxAge {
            return await abandon(command, owner: owner, reason: "unsettled after \(command.attempts) attempts and \(Int(policy.maxAge)) s")
        }
        switch await gateway.attempt(command, command: ledgered, owner: owner, by: "reconciler", mayHaveRun: true) {
        case .upstream, .answer(.success): return .settled
        case .answer(.failure(let error)):
            if error.message.hasPrefix(CommandStep.abandonedPrefix) { return .abandoned }
            // A rejection settles too; only a retryable failure leaves it pending.
            return error.code == .serviceUnavailable || error.code == .internalServerError ? .postponed : .settled
        }
    }

    private func abandon(_ command: PendingUpstreamCommand, owner: UUID, reason: String) async -> Handled {
        _ = await gateway.abandon(command, owner: owner, reason: reason)
        return .abandoned
    }
}
