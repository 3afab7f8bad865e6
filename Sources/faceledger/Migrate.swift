import ArgumentParser
import EventLog
import Postgres

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending schema migrations.",
        discussion: "Safe to run from several processes at once: one applies, the others wait and find nothing to do.")

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let logger = makeLogger()
        let target = try await database.open(logger: logger)
        defer { target.close(logger: logger) }
        let connection = try await PostgresConnection.connect(target.conninfo)
        let applied = try await Migrations.migrate(connection)
        let current = try await Migrations.appliedVersions(connection)
        await connection.close()
        printLine(applied.isEmpty
            ? "schema up to date (version \(current.last ?? 0))"
            : "applied migrations \(applied.map(String.init).joined(separator: ", ")); schema at version \(current.last ?? 0)")
    }
}
