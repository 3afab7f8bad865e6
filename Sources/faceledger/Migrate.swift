import ArgumentParser
import EventLog
import Postgres

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending schema migrations.",
        discussion: "Safe to run from several processes at once: one applies, the others wait and find nothing to do.")

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let (applied, current) = try await database.withConnection(logger: makeLogger()) { connection in
            (try await Migrations.migrate(connection), try await Migrations.appliedVersions(connection))
        }
        printLine(
            applied.isEmpty
                ? "schema up to date (version \(current.last ?? 0))"
                : "applied migrations \(applied.map(String.init).joined(separator: ", ")); schema at version \(current.last ?? 0)")
    }
}
