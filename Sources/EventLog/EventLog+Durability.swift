import Foundation
import Postgres

extension EventLog {
    /// A statement that makes every transaction committed before it durable: it commits a transaction
    /// of its own synchronously, and a synchronous commit flushes the WAL up to its commit record,
    /// which lies after every earlier commit's. The command processor commits its batches with
    /// `synchronous_commit = off` and runs this before it answers, so many commits share one flush.
    ///
    /// The transaction writes one logical-decoding message (no table, no row): a commit flushes only
    /// when its transaction wrote WAL and has a transaction id, which a `SELECT` alone never has. The
    /// message is written at every `wal_level`, `minimal` included, and any role may send it.
    public static let flushSQL = "SELECT pg_logical_emit_message(true, 'faceledger', 'flush')"

    /// Waits until every commit this session could have seen so far is durable.
    ///
    /// For readers that hand events out of the database (`audit tail`, the audit API): a batch's
    /// events are visible from its commit, a moment before the processor's flush makes them durable;
    /// this keeps such a reader from publishing an event that a crash of PostgreSQL in that moment
    /// would take back. The insert position read now lies after the commit record of every
    /// transaction visible to statements before it. Usually already flushed; otherwise the
    /// processor's flush, or PostgreSQL's WAL writer within a few of its `wal_writer_delay`s, gets there.
    public static func awaitDurable(in session: PostgresSession) throws {
        let inserted = try session.query("SELECT pg_current_wal_insert_lsn()::text")[0].decode(String.self, at: 0)
        var wait: UInt32 = 200
        while !(try session.query("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", [.text(inserted)])[0].decode(Bool.self, at: 0)) {
            usleep(wait)
            wait = min(wait * 2, 20_000)
        }
    }
}
