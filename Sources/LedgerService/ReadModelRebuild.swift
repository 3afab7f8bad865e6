import EventLog
import Foundation
import LedgerDomain
import Postgres

/// Recreates the read models from position 0 into fresh tables and swaps them in atomically, while
/// the server keeps answering from the old ones. Re-running after an interruption starts afresh.
public struct ReadModelRebuild: Sendable {
    public struct Progress: Sendable {
        public var done: Int64
        public var total: Int64
        public var eventsPerSecond: Double
        public var secondsLeft: Double?
    }

    public struct Outcome: Sendable {
        public var events: Int64
        public var position: Int64
    }

    /// One rebuild at a time per database ("FLRebuil"). Advisory locks are per database (PostgreSQL
    /// keys them by the database's OID besides this key), so rebuilds of other databases on the same
    /// server never wait for each other.
    static let lockKey: Int64 = 0x464C_5265_6275_696C
    let connection: PostgresConnection

    let biometrics: Biometrics
    /// Events read at a time (`Biometrics.pageSize`; smaller in tests, for logs of many pages).
    var pageSize = Biometrics.pageSize

    public init(connection: PostgresConnection, biometrics: Biometrics) {
        self.connection = connection
        self.biometrics = biometrics
    }

    public func run(progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws -> Outcome {
        try await connection.run { session in
            guard try session.query("SELECT pg_try_advisory_lock($1)", [.int64(Self.lockKey)])[0].decode(Bool.self, at: 0) else {
                throw MaintenanceError(description: "another rebuild is running")
            }
            defer { _ = try? session.query("SELECT pg_advisory_unlock($1)", [.int64(Self.lockKey)]) }
            try session.executeScript(
                """
                DROP TABLE IF EXISTS rm_collections_rebuild, rm_users_rebuild, rm_faces_rebuild,
                                     rm_collections_old, rm_users_old, rm_faces_old;
                -- Indexes come after the rows (`indexFreshTables`).
                CREATE TABLE rm_collections_rebuild (LIKE rm_collections INCLUDING ALL EXCLUDING INDEXES);
                CREATE TABLE rm_users_rebuild (LIKE rm_users INCLUDING ALL EXCLUDING INDEXES);
                CREATE TABLE rm_faces_rebuild (LIKE rm_faces INCLUDING ALL EXCLUDING INDEXES);
                -- The fresh tables get the rights the service role has on the live ones (migration 008).
                DO $$ BEGIN
                    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'faceledger_service') THEN
                        GRANT SELECT, INSERT, UPDATE, DELETE ON rm_collections_rebuild, rm_users_rebuild, rm_faces_rebuild
                            TO faceledger_service;
                    END IF;
                END $$;
                """)
            // 1. Fold the whole log in memory, then fill the fresh tables and index them.
            var folded = try fold(in: session, progress: progress)
            for chunk in StateRows.inserts(forAll: folded.state, tables: .rebuild).chunked(10) {
                _ = try session.pipeline(Array(chunk))
            }
            try session.executeScript(Self.indexFreshTables)
            // 2. Swap. Lock order as the projector's (checkpoint row, then tables), so neither waits for the other forever.
            // The lease columns are left alone: the projector that owns it keeps it, finds its
            // checkpoint moved at its next claim, and reloads from the new one.
            try session.transaction {
                try session.query(
                    """
                    INSERT INTO projector_checkpoints (projector, position) VALUES ($1, 0) ON CONFLICT DO NOTHING
                    """, [.text(Projector.name)])
                try session.query("SELECT position FROM projector_checkpoints WHERE projector = $1 FOR UPDATE", [.text(Projector.name)])
                try session.executeScript("LOCK TABLE rm_collections, rm_users, rm_faces IN ACCESS EXCLUSIVE MODE")
                // What was appended meanwhile goes into the fresh tables first.
                try biometrics.forEachPage(after: folded.position, in: session) { events in
                    let touched = try folded.foldTracking(events)
                    _ = try StateRows.statements(for: folded.state, touched: touched, tables: .rebuild)
                        .map { try session.execute($0.sql, $0.parameters) }
                }
                try session.executeScript(
                    """
                    ALTER TABLE rm_collections RENAME TO rm_collections_old;
                    ALTER TABLE rm_users RENAME TO rm_users_old;
                    ALTER TABLE rm_faces RENAME TO rm_faces_old;
                    ALTER TABLE rm_collections_rebuild RENAME TO rm_collections;
                    ALTER TABLE rm_users_rebuild RENAME TO rm_users;
                    ALTER TABLE rm_faces_rebuild RENAME TO rm_faces;
                    """)
                try session.query(
                    "UPDATE projector_checkpoints SET position = $2 WHERE projector = $1",
                    [.text(Projector.name), .int64(folded.position)])
            }
            try session.executeScript("DROP TABLE rm_collections_old, rm_users_old, rm_faces_old")
            return Outcome(events: folded.eventCount, position: folded.position)
        }
    }

    /// Gives each fresh table the keys and indexes of its live counterpart, as the live one has them
    /// (whatever migrations made them): primary keys and unique constraints as constraints, other
    /// indexes as indexes. Built once over all rows, which costs a fraction of growing them row by row.
    static let indexFreshTables = """
        DO $$
        DECLARE
            live text;
            index record;
        BEGIN
            FOREACH live IN ARRAY ARRAY['rm_collections', 'rm_users', 'rm_faces'] LOOP
                FOR index IN
                    SELECT i.indisunique AS is_unique, c.oid AS constraint_oid,
                           substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$') AS method_and_keys
                    FROM pg_index i
                    LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                    WHERE i.indrelid = live::regclass
                LOOP
                    IF index.constraint_oid IS NOT NULL THEN
                        EXECUTE format('ALTER TABLE %I ADD %s', live || '_rebuild', pg_get_constraintdef(index.constraint_oid));
                    ELSE
                        EXECUTE format('CREATE %s INDEX ON %I %s',
                            CASE WHEN index.is_unique THEN 'UNIQUE' ELSE '' END, live || '_rebuild', index.method_and_keys);
                    END IF;
                END LOOP;
            END LOOP;
        END $$
        """

    private func fold(in session: PostgresSession, progress: (Progress) -> Void) throws -> FoldedState {
        let total = try session.query("SELECT count(*) FROM events")[0].decode(Int64.self, at: 0)
        // This thread reads pages; another decodes and folds them (`BackgroundFold`).
        let folding = BackgroundFold()
        var done: Int64 = 0
        let started = ContinuousClock.now
        try biometrics.forEachPage(after: 0, pageSize: pageSize, in: session) { events in
            try folding.fold(events)
            done += Int64(events.count)
            let elapsed = (ContinuousClock.now - started) / .seconds(1)
            let rate = elapsed > 0 ? Double(done) / elapsed : 0
            progress(
                Progress(
                    done: done, total: max(total, done), eventsPerSecond: rate,
                    secondsLeft: rate > 0 ? Double(max(0, total - done)) / rate : nil))
        }
        return try folding.finish()
    }
}
