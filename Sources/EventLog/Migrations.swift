import Postgres

/// One numbered SQL file of `migrations/`.
public struct Migration: Sendable, Hashable {
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    public let version: Int
    public let name: String
    public let sql: String
}

/// Applies the schema migrations compiled into the binary.
///
/// Each pending migration runs in its own transaction and is recorded in `schema_migrations`; a
/// session-level advisory lock makes concurrent starts safe: the first applies, the others wait
/// and then find nothing to do.
public enum Migrations {
    /// The migrations of `migrations/`, in version order.
    public static let all: [Migration] = embeddedMigrations.map { file, sql in
        let stem = file.split(separator: ".").first.map(String.init) ?? file
        let parts = stem.split(separator: "_", maxSplits: 1)
        guard let version = parts.first.flatMap({ Int($0) }) else {
            preconditionFailure("migration file \(file) does not start with its number")
        }
        return Migration(version: version, name: parts.count > 1 ? String(parts[1]) : stem, sql: sql)
    }.sorted { $0.version < $1.version }

    /// The advisory lock held while migrating ("FLMigrat" in ASCII).
    static let lockKey: Int64 = 0x464C_4D69_6772_6174

    /// Applies every pending migration; returns the versions it applied (empty when up to date).
    @discardableResult
    public static func migrate(_ connection: PostgresConnection, migrations: [Migration] = all) async throws -> [Int] {
        try await connection.run { session in try apply(migrations, in: session) }
    }

    /// Applies pending migrations on the caller's session, holding the migration lock meanwhile.
    public static func apply(_ migrations: [Migration], in session: PostgresSession) throws -> [Int] {
        try session.query("SELECT pg_advisory_lock($1)", [.int64(lockKey)])
        defer { _ = try? session.query("SELECT pg_advisory_unlock($1)", [.int64(lockKey)]) }
        // Created only when missing: a restricted role (`faceledger_service`) that may not create
        // tables can still start a server on an up-to-date database.
        let tracked = try session.query("SELECT to_regclass('schema_migrations') IS NOT NULL")[0].decode(Bool.self, at: 0)
        if !tracked {
            try session.executeScript(
                """
                CREATE TABLE schema_migrations (
                    version    integer     PRIMARY KEY,
                    name       text        NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
        }
        let applied = Set(try session.query("SELECT version FROM schema_migrations").map { try $0.decode(Int.self, at: 0) })
        var newlyApplied: [Int] = []
        for migration in migrations where !applied.contains(migration.version) {
            try session.transaction {
                try session.executeScript(migration.sql)
                try session.query(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    [.int64(Int64(migration.version)), .text(migration.name)])
            }
            newlyApplied.append(migration.version)
        }
        return newlyApplied
    }

    /// The versions recorded as applied, in order.
    public static func appliedVersions(_ connection: PostgresConnection) async throws -> [Int] {
        try await connection.run { session in
            try session.query("SELECT version FROM schema_migrations ORDER BY version").map { try $0.decode(Int.self, at: 0) }
        }
    }
}
