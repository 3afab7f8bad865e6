import EventLog
import Postgres

extension Biometrics {
    /// The events after `position` (up to `through`), in order, a page at a time with their embeddings
    /// opened: the one loop every fold of the log (the write side's catch-up, the projector's load, a
    /// rebuild) runs. `body` gets each page; it may throw to stop.
    func forEachPage(
        after position: Int64, through last: Int64 = .max, pageSize: Int = Self.pageSize, in session: PostgresSession,
        _ body: ([FoldEvent]) throws -> Void
    ) throws {
        var position = position
        while position < last {
            let page = try open(
                EventLog.readForFold(after: position, limit: pageSize, in: session).filter { $0.position <= last },
                in: session)
            guard let end = page.last else { return }
            try body(page)
            position = end.position
        }
    }

    /// Events read at a time: large enough that the round trips do not count, small enough that a page
    /// of embeddings stays a few megabytes.
    static let pageSize = 5000
}
