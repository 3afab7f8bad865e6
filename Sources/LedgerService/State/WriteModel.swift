import EventLog
import LedgerDomain
import Postgres

/// The write model (migration 011): the state tables the command side decides against, folded in the
/// same transaction as the events, and the log position they reflect.
enum WriteModel {
    /// The write model's position and the log's head. Under the append lock they are equal, unless the
    /// log was written before the write model existed, or by something that does not fold.
    static func positions(in session: PostgresSession) throws -> (folded: Int64, head: Int64) {
        try positions(from: session.query(positionsSQL))
    }

    private static let positionsSQL = "SELECT position, (SELECT coalesce(max(position), 0) FROM events)::bigint FROM write_model"

    private static func positions(from rows: [PostgresRow]) throws -> (folded: Int64, head: Int64) {
        (try rows[0].decode(at: 0), try rows[0].decode(at: 1))
    }

    /// Takes the append lock and brings the write model up to the log's head (`catchUp`), in one round
    /// trip when it is there already (it is, unless the log was written without folding). `first` (the
    /// transaction's settings, say) run before the lock, in the same round trip.
    static func lockAndCatchUp(after first: [PostgresStatement] = [], biometrics: Biometrics, in session: PostgresSession) throws {
        // Each statement has a snapshot of its own (READ COMMITTED): the positions are read under the lock.
        let results = try session.pipeline(
            first + [
                PostgresStatement("SELECT pg_advisory_xact_lock($1)", [.int64(EventLog.appendLockKey)]),
                PostgresStatement(positionsSQL),
            ])
        let (folded, head) = try positions(from: results[results.count - 1].rows)
        if folded < head { try catchUp(in: session, biometrics: biometrics) }
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
