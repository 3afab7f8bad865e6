import ArgumentParser
import AsyncAlgorithms
import Dispatch
import EventLog
import Foundation
import LedgerService
import Postgres

/// `faceledger audit tail`: the change feed. Prints every audit entry as it commits, one JSON line
/// each, from a position on, until SIGINT or SIGTERM.
///
/// Appends are serialised until they commit, so an entry becomes visible only after every entry
/// with a smaller position: reading "after the last position printed" never skips one, and never
/// repeats one. NOTIFY only says when to read again; a (re)connection of the listener, and a
/// one-second tick, make it read again too, so a lost notification delays nothing for long.
struct AuditTail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Stream audit entries as they commit, one JSON line each, until interrupted.",
        discussion: """
            Resume where a previous run stopped with --from and the last Position it printed: every entry is \
            printed exactly once across runs. Entries have the shape of the audit queries' (see `audit --help`).
            """)

    @Option(help: "Only entries of this collection (env FACELEDGER_COLLECTION).") var collection: String?
    @Option(help: "Print entries after this position (default 0: from the start; env FACELEDGER_FROM).") var from: String?
    @Flag(help: "One JSON entry per line (the only format; env FACELEDGER_JSONL=1).") var jsonl = false
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        _ = try resolveFlag(jsonl, flag: "jsonl")
        let start = from ?? environmentValue(forFlag: "from") ?? "0"
        guard let position = Int64(start), position >= 0 else {
            throw ValidationError("--from \(start) is not a position (a whole number, 0 or more)")
        }
        let collectionId = collection ?? environmentValue(forFlag: "collection")
        let subject: AuditSubject = collectionId.map { .collection($0) } ?? .everything

        let logger = makeLogger()
        let target = try await database.open(logger: logger)
        defer { target.close(logger: logger) }
        let connection = try await PostgresConnection.connect(target.conninfo)
        let listener = PostgresListener(conninfo: target.conninfo, channels: [EventLog.notificationChannel])

        // SIGINT/SIGTERM end the feed between two lines, so a consumer never sees half an entry, and
        // the embedded cluster this command may have started is stopped on the way out.
        let (signals, signalled) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { signalled.yield() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        let result = await Result {
            // The feed, the listener and the wait for a signal: the first to end (the feed by failing,
            // the wait by a signal) ends the others, and the listener has closed its connection when
            // the group returns.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await listener.run() }
                group.addTask {
                    try await Self.follow(subject, after: position, connection: connection, wakeUps: Self.wakeUps(listener))
                }
                group.addTask { for await _ in signals { return } }
                try await group.next()
                group.cancelAll()
            }
        }
        await connection.close()
        if case .failure(let error) = result, !(error is CancellationError) { throw error }
    }

    /// Reads and prints everything after `position`, then waits for a wake-up, until cancelled.
    static func follow(
        _ subject: AuditSubject, after position: Int64, connection: PostgresConnection,
        wakeUps: WakeUps
    ) async throws {
        var last = position
        var wakeUps = wakeUps.makeAsyncIterator()
        while !Task.isCancelled {
            while !Task.isCancelled {
                let window = AuditWindow(afterPosition: last)
                let page = try await connection.run { session in
                    try AuditQueries.entries(subject, window: window, limit: AuditOutput.pageSize, in: session)
                }
                for entry in page {
                    if Task.isCancelled { return }
                    printLine(AuditOutput.text(entry.json))
                    last = entry.position
                }
                if page.count < AuditOutput.pageSize { break }
            }
            guard await wakeUps.next() != nil else { return }
        }
    }

    typealias WakeUps = AsyncBufferSequence<
        AsyncMerge2Sequence<
            AsyncMapSequence<AsyncStream<PostgresListener.Event>, Void>, AsyncMapSequence<AsyncTimerSequence<ContinuousClock>, Void>
        >
    >

    /// A wake-up for each notification and (re)connection of the listener, and every second; those
    /// that come while a page is printed count as one.
    static func wakeUps(_ listener: PostgresListener) -> WakeUps {
        merge(listener.events.map { _ in () }, AsyncTimerSequence(interval: .seconds(1), clock: .continuous).map { _ in () })
            .buffer(policy: .bufferingLatest(1))
    }
}
