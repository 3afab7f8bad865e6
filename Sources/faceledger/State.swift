import ArgumentParser
import Foundation
import LedgerDomain
import LedgerService
import Postgres

struct State: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a collection's users and their faces at a past instant.",
        discussion: """
            Folds the collection's events up to that instant from the log alone; the live read models are not \
            read, so it works while they are being rebuilt. --json prints \
            {"CollectionId", "AsOf", "Users": [{"UserId", "FaceIds": [...]}]}.
            """)

    @Option(help: "The collection (required; env FACELEDGER_COLLECTION).") var collection: String?
    @Option(
        name: .customLong("as-of"),
        help: "ISO 8601 instant, e.g. 2026-11-29T23:00:00Z or with fractional seconds (required; env FACELEDGER_AS_OF).")
    var asOf: String?
    @Flag(help: "Print one JSON object (env FACELEDGER_JSON=1).") var json = false
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let collectionId = try required(collection, flag: "collection")
        let asOf = try required(self.asOf, flag: "as-of")
        let json = try resolveFlag(self.json, flag: "json")
        guard let instant = ISO8601.parse(asOf) else {
            throw ValidationError("--as-of \(asOf) is not an ISO 8601 instant (e.g. 2026-11-29T23:00:00Z)")
        }
        let found = try await database.withConnection(logger: makeLogger()) { connection in
            try await connection.run { session in try TimeTravel.collection(collectionId, asOf: instant, in: session) }
        }
        guard let found else { throw RuntimeError("collection \(collectionId) did not exist at \(asOf)") }
        let snapshot = TimeTravel.snapshot(of: found, asOf: asOf)
        if json {
            printLine(String(decoding: try CanonicalJSON.encode(snapshot), as: UTF8.self))
        } else {
            printLine("collection \(snapshot.CollectionId) as of \(snapshot.AsOf): \(snapshot.Users.count) users")
            for user in snapshot.Users {
                printLine("\(user.UserId): \(user.FaceIds.isEmpty ? "(no faces)" : user.FaceIds.joined(separator: " "))")
            }
        }
    }
}

enum ISO8601 {
    /// Parses an ISO 8601 instant with any number of fractional digits (kept to the microsecond,
    /// the log's precision), with `Z` or an offset.
    static func parse(_ text: String) -> Date? {
        var whole = text
        var fraction = 0.0
        if let dot = text.firstIndex(of: ".") {
            let digits = text[text.index(after: dot)...].prefix { $0.isNumber }
            guard !digits.isEmpty, let value = Double("0." + digits) else { return nil }
            fraction = value
            whole = String(text[..<dot]) + text[text.index(after: dot)...].dropFirst(digits.count)
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: whole).map { $0.addingTimeInterval(fraction) }
    }
}
