import ArgumentParser
import EventLog
import FaceLedgerServer
import Foundation
import LedgerDomain
import LedgerService
import Logging
import Postgres
import RekognitionWire

struct Reconcile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Settle upstream commands left unsettled; list them; check the upstream against the ledger.",
        discussion: """
            Upstream mode records every command before calling the upstream. A command whose call failed passingly, \
            whose answer was lost, or whose server was killed mid-call stays unsettled until it is replayed with the \
            same ClientRequestToken (or, for operations without one, resolved by probing the upstream). `serve \
            --upstream` does this in the background; this command does it from outside. Without a flag it runs the \
            reconciler until interrupted; --once makes one pass over every unsettled command past the grace period and \
            exits; --list prints the unsettled commands and the abandoned ones; --check compares a collection's users \
            and associations upstream with the ledger's and prints every difference (exit 1 when there is one), and \
            with --adopt records the upstream's state as observed, under the operator's principal, so the audit shows \
            the change made behind the ledger's back.
            """)

    @Flag(name: .customLong("once"), help: "One pass, then exit (env FACELEDGER_ONCE=1).") var onceFlag = false
    @Flag(name: .customLong("list"), help: "List unsettled and abandoned commands, then exit (env FACELEDGER_LIST=1).") var listFlag = false
    @Flag(name: .customLong("check"), help: "Compare --collection upstream with the ledger (exit 1 on a difference; env FACELEDGER_CHECK=1).")
    var checkFlag = false
    @Flag(name: .customLong("adopt"), help: "With --check: record the upstream's state in the ledger as observed (env FACELEDGER_ADOPT=1).")
    var adoptFlag = false
    @Option(help: "The collection --check compares (env FACELEDGER_COLLECTION).") var collection: String?
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var upstream: UpstreamOptions
    @OptionGroup var configFile: ConfigOptions
    @OptionGroup var masterKey: MasterKeyOptions

    func run() async throws {
        try configFile.apply(to: Self.self)
        // Resolved after the config file, which may set them too.
        let once = try resolveFlag(onceFlag, flag: "once")
        let list = try resolveFlag(listFlag, flag: "list")
        let check = try resolveFlag(checkFlag, flag: "check")
        let adopt = try resolveFlag(adoptFlag, flag: "adopt")
        if [once, list, check].filter({ $0 }).count > 1 { throw ValidationError("give at most one of --once, --list and --check") }
        if adopt && !check { throw ValidationError("--adopt goes with --check") }
        // What is missing is said before a database is opened (an embedded one takes seconds to start).
        let settings = list ? nil : try upstream.settings()
        if !list && settings == nil {
            throw ValidationError("--upstream (or FACELEDGER_UPSTREAM) is required, except with --list")
        }
        let logger = makeLogger()
        let target = try await database.open(logger: logger)
        defer { target.close(logger: logger) }
        let sessions = SessionSettings.service(deadline: .seconds(30))
        let pool = PostgresPool(
            conninfo: target.conninfo, maxConnections: 4, acquireTimeout: .seconds(30),
            reconnectTimeout: .seconds(5), settings: sessions)
        try await pool.use { pool in
            let pending = PendingCommands(pool: pool)
            if list { return try await printList(pending: pending, pool: pool) }

            guard let settings, let reconcilerConfiguration = settings.reconciler else { return }
            let differs = try await UpstreamRuntime.with(
                settings, conninfo: target.conninfo, pool: pool,
                masterKeys: try masterKey.resolved(database: database), logger: logger
            ) {
                runtime in
                let (client, processor, gateway) = (runtime.client, runtime.processor, runtime.gateway)
                let reconciler = Reconciler(
                    gateway: gateway, configuration: reconcilerConfiguration,
                    region: settings.identity.region, logger: logger)
                if check {
                    return try await checkDrift(client: client, processor: processor, pool: pool, adopt: adopt)
                } else if once {
                    let summary = await reconciler.pass(dueOnly: false)
                    let left = try await pending.count()
                    printLine("settled \(summary.settled), postponed \(summary.postponed), abandoned \(summary.abandoned); \(left) unsettled")
                } else {
                    logger.info("reconciler running", metadata: ["upstream": "\(settings.client.endpoint)"])
                    while !Task.isCancelled {
                        _ = await reconciler.pass(dueOnly: true)
                        try await Task.sleep(for: reconcilerConfiguration.interval)
                    }
                }
                return false
            }
            if differs { throw ExitCode.failure }
        }
    }

    /// Prints the differences; true when there are some that were not adopted.
    private func checkDrift(client: UpstreamClient, processor: CommandProcessor, pool: PostgresPool, adopt: Bool) async throws -> Bool {
        let collectionId = try required(collection, flag: "collection")
        let readAfter = try await pool.query(
            "SELECT coalesce(max(position), 0) FROM events WHERE collection_id = $1",
            [.text(collectionId)])[0].decode(Int64.self, at: 0)
        let observation: UpstreamObservation
        do {
            observation = try await UpstreamDrift.observe(collectionId: collectionId, client: client)
        } catch {
            throw RuntimeError("cannot read collection \(collectionId) upstream: \(error)")
        }
        let record = adopt
        let principal = operatorPrincipal()
        let submission = CommandSubmission(
            operation: "ObservedUpstream", collectionId: collectionId,
            recordedRequest: .object(["CollectionId": .string(collectionId), "Observed": .string("upstream")]), requestHash: "",
            command: .failure(LedgerError(.internalServerError, "not decided")),
            metadata: EventMetadata(principal: principal, requestId: UUID().uuidString, operation: "ObservedUpstream"),
            step: .adopt(observation, record: record, readAfter: readAfter))
        switch await processor.perform(submission) {
        case .adopted(let differences):
            for difference in differences { printLine(difference.adoptionSummary) }
            if differences.isEmpty {
                printLine("collection \(collectionId): the ledger and the upstream agree")
                return false
            }
            printLine(
                record
                    ? "adopted \(differences.count) differences as \(principal)"
                    : "\(differences.count) differences (record them with --adopt)")
            return !record
        case .answered(.failure(let error)):
            throw RuntimeError("the ledger could not compare: \(error.message)")
        default:
            throw RuntimeError("the ledger could not compare")
        }
    }

    private func printList(pending: PendingCommands, pool: PostgresPool) async throws {
        let unsettled = try await pending.all()
        let formatter = ISO8601DateFormatter()
        printLine("unsettled: \(unsettled.count)")
        for entry in unsettled {
            let command = entry.command
            printLine(
                [
                    command.commandId.uuidString.lowercased(), command.collectionId, command.operation, command.upstreamToken,
                    "accepted " + formatter.string(from: command.acceptedAt), "attempts \(command.attempts)",
                    "next " + formatter.string(from: entry.nextAttemptAt),
                ].joined(separator: "  "))
        }
        let abandoned = try await pool.query(
            """
            SELECT command_id, collection_id, operation, client_token, recorded_at, data->>'reason' FROM events
            WHERE type = \(EventType.commandAbandoned.sql) ORDER BY position
            """)
        printLine("abandoned: \(abandoned.count)")
        for row in abandoned {
            let commandId = try row.decode(UUID?.self, at: 0)?.uuidString.lowercased() ?? "-"
            printLine(
                [
                    commandId, try row.decode(String.self, at: 1), try row.decode(String.self, at: 2),
                    try row.decode(String?.self, at: 3) ?? "-", "abandoned " + formatter.string(from: try row.decode(Date.self, at: 4)),
                    try row.decode(String?.self, at: 5) ?? "",
                ].joined(separator: "  "))
        }
    }
}
