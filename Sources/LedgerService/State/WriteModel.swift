import EventLog
import LedgerDomain
import Postgres

/// The write model (migration 011): the state tables the command side decides against, folded in the
/// same transaction as the events, and the log position they reflect.
enum WriteModel {
    /// The write model's position and the log's head. Under the append lock they are equal, unless the
    /// log was written before the write model existed, or by something that does not fold.
    static func positions(in session: PostgresSession) throws -> (folded: Int64, head: Int64) {
        let (folded, head) = try positions(from: session.query(positionsSQL))
        return (folded, head.position)
    }

    private static let positionsSQL = "SELECT (SELECT position FROM write_model), \(EventLog.Head.columns)"

    private static func positions(from rows: [PostgresRow]) throws -> (folded: Int64, head: EventLog.Head) {
        (try rows[0].decode(at: 0), EventLog.Head(position: try rows[0].decode(at: 1), nextRecordedAt: try rows[0].decode(at: 2)))
    }

    /// The statements that take the append lock and then read the write model's position beside the
    /// log's head (`positions(from:)`). Each statement has a snapshot of its own (READ COMMITTED), so
    /// whatever follows them in the transaction reads under the lock.
    static let locking = [
        PostgresStatement("SELECT pg_advisory_xact_lock($1)", [.int64(EventLog.appendLockKey)]),
        PostgresStatement(positionsSQL),
    ]

    /// The write model's position and the log's head, by the result of `locking`'s last statement.
    /// They differ only when something appended without folding (a log written before the write model
    /// existed, or by another tool); then the caller folds those events (`catchUp`) before deciding.
    /// The head stays where it was read for as long as the caller holds the lock.
    static func positions(from positionsResult: PostgresResult) throws -> (folded: Int64, head: EventLog.Head) {
        try positions(from: positionsResult.rows)
    }

    /// Folds what the log holds past the write model's position, up to `maxEvents` of it, and moves the
    /// position. The caller holds the append lock. Returns true when the write model is caught up.
    @discardableResult
    static func catchUp(in session: PostgresSession, biometrics: Biometrics, maxEvents: Int64 = .max) throws -> Bool {
        let (folded, head) = try positions(in: session)
        guard folded < head else { return true }
        let last = head - folded <= maxEvents ? head : folded + maxEvents
        var position = folded
        try biometrics.forEachPage(after: folded, through: last, in: session) { page in
            try StateRows.fold(page.ledgerEvents(), into: .writeModel, in: session)
            position = page[page.count - 1].position
        }
        try advance(to: max(position, last), in: session)
        return last == head
    }

    static func advance(to position: Int64, in session: PostgresSession) throws {
        let statement = advancing(to: position)
        try session.execute(statement.sql, statement.parameters)
    }

    /// The statement that moves the write model's position.
    static func advancing(to position: Int64) -> PostgresStatement {
        PostgresStatement("UPDATE write_model SET position = $1", [.int64(position)])
    }
}
