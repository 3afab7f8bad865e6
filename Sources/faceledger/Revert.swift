import ArgumentParser
import FaceLedgerServer
import Foundation
import LedgerDomain
import LedgerService
import Logging
import Postgres

struct Revert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Undo a collection's association changes since an instant with new, ledgered commands.",
        discussion: """
            Gives every face whose association changed after --to back to the user it had then (or none), with \
            ordinary DisassociateFaces and AssociateFaces commands recorded under the operator's principal \
            (operator:<login name>). With --principal, only faces whose last change came from that principal go \
            back; later changes by others stay in place. History is never rewritten. --dry-run prints the plan only. \
            In upstream mode give --upstream and the upstream's credentials, as for `serve`: the commands then run \
            upstream like a client's, so the ledger and the upstream change together.
            """)

    @Option(help: "The collection (required; env FACELEDGER_COLLECTION).") var collection: String?
    @Option(help: "ISO 8601 instant to go back to (required; env FACELEDGER_TO).") var to: String?
    @Option(help: "Undo only this principal's changes (env FACELEDGER_PRINCIPAL).") var principal: String?
    @Flag(name: .customLong("dry-run"), help: "Print the plan without changing anything (env FACELEDGER_DRY_RUN=1).")
    var dryRun = false
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var upstream: UpstreamOptions
    @OptionGroup var masterKey: MasterKeyOptions

    func run() async throws {
        let collection = try required(self.collection, flag: "collection")
        let to = try required(self.to, flag: "to")
        let principal = self.principal ?? environmentValue(forFlag: "principal")
        let dryRun = try resolveFlag(self.dryRun, flag: "dry-run")
        guard let instant = ISO8601.parse(to) else {
            throw ValidationError("--to \(to) is not an ISO 8601 instant (e.g. 2026-11-29T23:00:00Z)")
        }
        let upstreamSettings = try upstream.settings(runReconciler: false)
        let masterKeys = dryRun ? nil : try masterKey.resolved(database: database)
        let logger = makeLogger()
        let actor = operatorPrincipal()
        let target = try await database.open(logger: logger)
        defer { target.close(logger: logger) }
        let (plan, outcomes) = try await PostgresConnection.with(target.conninfo) { connection in
            let plan = try await RevertRun.plan(collectionId: collection, to: instant, principal: principal, connection: connection)
            for step in plan.steps {
                printLine("\(step.faceId): \(step.currentOwner ?? "(no user)") -> \(step.formerOwner ?? "(no user)")")
            }
            for skip in plan.skipped { printLine("\(skip.faceId): left as it is: \(skip.reason)") }
            if dryRun || plan.steps.isEmpty { return (plan, [(LedgerCommand, CommandAnswer)]()) }
            if let upstreamSettings {
                // Upstream mode: the commands run upstream like a client's, so both sides change together.
                let outcomes = try await PostgresPool(conninfo: target.conninfo, maxConnections: 2).use { pool in
                    try await UpstreamRuntime.with(
                        upstreamSettings, conninfo: target.conninfo, pool: pool,
                        masterKeys: masterKeys!, logger: logger
                    ) { runtime in
                        await RevertRun.execute(plan, collectionId: collection, operator: actor) {
                            operation, request, command, metadata in
                            await runtime.gateway.execute(operation: operation, request: request, command: command, metadata: metadata)
                        }
                    }
                }
                return (plan, outcomes)
            }
            if try await RevertRun.isUpstreamLedger(collectionId: collection, connection: connection) {
                throw RuntimeError(
                    "collection \(collection) is ledgered in front of an upstream: give --upstream (and its "
                        + "credentials) so the revert's commands run there too, or the two would drift apart")
            }
            let biometrics = Biometrics(masterKeys: masterKeys!)
            try await connection.run { try biometrics.verify(in: $0) }
            let processor = CommandProcessor(conninfo: target.conninfo, logger: logger, biometrics: biometrics)
            let outcomes = try await processor.running {
                await RevertRun.execute(plan, collectionId: collection, operator: actor, processor: processor)
            }
            return (plan, outcomes)
        }
        if dryRun || plan.steps.isEmpty {
            printLine(plan.steps.isEmpty ? "nothing to revert" : "dry run: \(plan.steps.count) faces would go back")
            return
        }
        // A command may succeed and still leave faces behind (its Unsuccessful… list): those count as failures too.
        let notPutBack = RevertRun.facesNotPutBack(outcomes)
        for face in notPutBack {
            FileHandle.standardError.write(Data("could not put back \(face.faceId): \(face.reason)\n".utf8))
        }
        printLine("reverted \(plan.steps.count - notPutBack.count) of \(plan.steps.count) faces with \(outcomes.count) commands as \(actor)")
        if !notPutBack.isEmpty { throw ExitCode.failure }
    }
}
