import ArgumentParser
import Foundation
import LedgerDomain
import LedgerService
import Postgres

/// `faceledger audit …`: the audit queries of the API, read from the database directly.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show who did what to a face, a user or a collection, what a principal or a request did; follow the log.",
        discussion: """
            Entries come from the event log itself, oldest first (deleted faces, users and collections included), \
            the same as FaceLedger.Get*History answers: a table on a terminal, --json one document \
            {"Entries": [...]}, --jsonl one entry per line. Output is streamed page by page, so exports of any \
            size run in constant memory. --from/--to take ISO 8601 instants or epoch seconds: entries recorded \
            at or after --from and before --to.
            """,
        subcommands: [
            AuditFace.self, AuditUser.self, AuditPrincipal.self, AuditCollection.self, AuditByRequest.self,
            AuditTail.self,
        ])
}

/// The options every audit query shares.
struct AuditQueryOptions: ParsableArguments {
    @Option(help: "Entries recorded at or after this instant (ISO 8601 or epoch seconds; env FACELEDGER_FROM).")
    var from: String?
    @Option(help: "Entries recorded before this instant (ISO 8601 or epoch seconds; env FACELEDGER_TO).")
    var to: String?
    @Flag(help: "Print one JSON document {\"Entries\": [...]} (env FACELEDGER_JSON=1).") var json = false
    @Flag(help: "Print one JSON entry per line (env FACELEDGER_JSONL=1).") var jsonl = false
    @OptionGroup var database: DatabaseOptions

    /// Runs the query and prints every entry, reading a page at a time.
    func run(_ subject: AuditSubject) async throws {
        let from = try instant(from, flag: "from")
        let to = try instant(to, flag: "to")
        if let from, let to, from > to { throw ValidationError("--from must not be later than --to") }
        let format = try AuditOutput.Format(json: resolveFlag(json, flag: "json"), jsonl: resolveFlag(jsonl, flag: "jsonl"))
        var output = AuditOutput(format: format)
        try await database.withConnection(logger: makeLogger()) { connection in
            var window = AuditWindow(from: from, to: to)
            while true {
                let query = window
                let page = try await connection.run { session in
                    try AuditQueries.entries(subject, window: query, limit: AuditOutput.pageSize, in: session)
                }
                page.forEach { output.write($0) }
                guard page.count == AuditOutput.pageSize, let last = page.last else { break }
                window.afterPosition = last.position
            }
        }
        output.finish()
    }

    /// An instant given as epoch seconds or ISO 8601.
    private func instant(_ value: String?, flag: String) throws -> Date? {
        guard let text = value ?? environmentValue(forFlag: flag) else { return nil }
        if let seconds = Double(text), seconds.isFinite, (0...253_402_300_799).contains(seconds) {
            return Date(timeIntervalSince1970: seconds)
        }
        guard let date = ISO8601.parse(text) else {
            throw ValidationError("--\(flag) \(text) is neither epoch seconds nor an ISO 8601 instant (e.g. 2026-11-29T23:00:00Z)")
        }
        return date
    }
}

struct AuditFace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "face", abstract: "Every attempt that touched a face.")
    @Argument(help: "The collection.") var collection: String
    @Argument(help: "The face's id.") var faceId: String
    @OptionGroup var options: AuditQueryOptions
    func run() async throws { try await options.run(.face(collectionId: collection, faceId: faceId)) }
}

struct AuditUser: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "What was done to a user: its creation and deletion, every face attempt and refused request naming it.")
    @Argument(help: "The collection.") var collection: String
    @Argument(help: "The user's id.") var userId: String
    @OptionGroup var options: AuditQueryOptions
    func run() async throws { try await options.run(.user(collectionId: collection, userId: userId)) }
}

struct AuditPrincipal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "principal", abstract: "What a principal did.")
    @Argument(help: "The principal (a key's name in the credentials file, or operator:<login>).") var principal: String
    @Option(help: "Only in this collection (env FACELEDGER_COLLECTION).") var collection: String?
    @OptionGroup var options: AuditQueryOptions
    func run() async throws {
        try await options.run(.principal(principal, collectionId: collection ?? environmentValue(forFlag: "collection")))
    }
}

struct AuditCollection: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "collection", abstract: "Everything recorded in a collection.")
    @Argument(help: "The collection.") var collection: String
    @OptionGroup var options: AuditQueryOptions
    func run() async throws { try await options.run(.collection(collection)) }
}

struct AuditByRequest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request", abstract: "Everything one request caused (its x-amzn-RequestId), or the record of its refusal.")
    @Argument(help: "The request id.") var requestId: String
    @OptionGroup var options: AuditQueryOptions
    func run() async throws { try await options.run(.request(requestId)) }
}
