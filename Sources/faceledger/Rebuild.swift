import ArgumentParser
import Foundation
import LedgerService
import Postgres

struct Rebuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recreate the read models from the event log (the server may keep running).",
        discussion: """
            Folds the whole log into fresh tables, then swaps them in atomically: readers wait a moment during the \
            swap, never fail, and a running server's projector continues from the new tables. Shows progress on a \
            terminal. Safe to re-run after an interruption.
            """)

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var masterKey: MasterKeyOptions

    func run() async throws {
        let started = ContinuousClock.now
        let onTerminal = isatty(STDERR_FILENO) == 1
        let biometrics = Biometrics(masterKeys: try masterKey.resolved(database: database))
        let outcome = try await database.withConnection(logger: makeLogger()) { connection in
            try await connection.run { try biometrics.verify(in: $0) }
            return try await ReadModelRebuild(connection: connection, biometrics: biometrics).run { progress in
                if onTerminal { Self.show(progress) }
            }
        }
        if onTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
        let elapsed = (ContinuousClock.now - started) / .seconds(1)
        printLine(
            String(
                format: "rebuilt the read models from %lld events (up to position %lld) in %.1f s",
                outcome.events, outcome.position, elapsed))
    }

    /// One progress line, rewritten in place: events done / total, rate, ETA.
    static func show(_ progress: ReadModelRebuild.Progress) {
        let percent = progress.total > 0 ? 100 * Double(progress.done) / Double(progress.total) : 100
        let eta = progress.secondsLeft.map { String(format: "%.0f s", $0) } ?? "?"
        let line =
            String(
                format: "\rrebuild: %lld / %lld events (%.1f%%), %.0f events/s, ETA ",
                progress.done, progress.total, percent, progress.eventsPerSecond) + eta + "   "
        FileHandle.standardError.write(Data(line.utf8))
    }
}
