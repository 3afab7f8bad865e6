/// What a session agrees to before its first statement, and again after every reconnect: how long
/// it may wait to connect, how a dead peer is noticed, and run-time parameters such as `lock_timeout`.
///
/// A service's sessions carry deadlines so that no request waits for the database without bound;
/// command-line tools (migrate, rebuild) use `.none` and may run as long as their work takes.
public struct SessionSettings: Sendable, Hashable {
    /// libpq connection parameters (`connect_timeout`, `keepalives`, …). The connection string wins
    /// where it sets the same parameter.
    public var connectionDefaults: [String: String]
    /// Run-time parameters set on the session after it connects (`lock_timeout`, …).
    public var runtimeParameters: [String: String]

    public init(connectionDefaults: [String: String] = [:], runtimeParameters: [String: String] = [:]) {
        self.connectionDefaults = connectionDefaults
        self.runtimeParameters = runtimeParameters
    }

    /// No settings: libpq's and the server's defaults.
    public static let none = SessionSettings()

    /// The settings of a serving process whose requests must be answered within `deadline`:
    /// - a lock wait (behind a psql session, a stalled instance, a host that died mid-transaction)
    ///   ends after `deadline` with SQLSTATE 55P03, which the caller answers with 503;
    /// - a statement runs at most `statementTimeout` (a safety net: no statement of the service
    ///   should come near it);
    /// - a session of ours that stalls inside a transaction loses it after `idleInTransactionTimeout`,
    ///   releasing its locks for the other instances;
    /// - connecting gives up after `deadline` (at least 2 s, libpq's minimum that makes sense), and
    ///   TCP keepalives notice a peer that vanished without closing its connection within ~30 s;
    /// - no JIT compilation: the service's statements are short, and JIT would start only on a cost
    ///   misestimate, then spend tens of milliseconds compiling.
    public static func service(
        deadline: Duration, statementTimeout: Duration = .seconds(30), idleInTransactionTimeout: Duration = .seconds(10)
    ) -> SessionSettings {
        SessionSettings(
            connectionDefaults: [
                "connect_timeout": String(max(2, Int(deadline.components.seconds))),
                "keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "5", "keepalives_count": "3",
            ],
            runtimeParameters: [
                "lock_timeout": milliseconds(deadline),
                "statement_timeout": milliseconds(statementTimeout),
                "idle_in_transaction_session_timeout": milliseconds(idleInTransactionTimeout),
                "jit": "off",
            ])
    }

    /// The same settings with `synchronous_commit = on` pinned: an acknowledged command is on disk,
    /// whatever the database's or the role's default says.
    public var durableCommits: SessionSettings {
        var settings = self
        settings.runtimeParameters["synchronous_commit"] = "on"
        return settings
    }

    /// The same settings with plans fit for statements that find their rows by key, as every statement
    /// of the write path (the command processor, the projector) does:
    /// - `enable_seqscan = off`: a statement prepared while a table was small keeps the plan made then,
    ///   a sequential scan, as the table grows, until autovacuum analyzes it again (a minute or more; and
    ///   a table analyzed while empty is estimated empty however it grows). Measured on a new database
    ///   under load, those scans were a third of PostgreSQL's CPU. A table without an index is still
    ///   scanned, as there is no other way.
    ///
    /// - `plan_cache_mode = force_custom_plan`: every execution is planned for its own keys. A generic
    ///   plan is made without the arrays of keys: on a table whose statistics said small, it matched only
    ///   the collection in the index and compared each of the collection's rows with every key, so a
    ///   lookup read the whole collection. PostgreSQL's default switches a statement to its generic plan
    ///   for good once that looks no dearer than the custom plans of its first five runs, which it does
    ///   while the tables are small: a loadtest that imported 34,000 faces into a new collection then
    ///   spent 0.7 s on each of the projector's lookups (and a first start folding a log of 200,000 faces
    ///   took 63 s instead of 12 with generic plans forced). `append_events()` keeps its own, generic,
    ///   plans (migration 012): they look rows up by their whole key. (Custom plans need key lookups
    ///   that probe one key at a time as well, `PartialState`'s: for thousands of keys on a table
    ///   analyzed while small, a custom plan too read the whole collection.)
    public var keyLookups: SessionSettings {
        var settings = self
        settings.runtimeParameters["enable_seqscan"] = "off"
        settings.runtimeParameters["plan_cache_mode"] = "force_custom_plan"
        return settings
    }

    private static func milliseconds(_ duration: Duration) -> String {
        String(max(1, Int64(duration / .milliseconds(1)))) + "ms"
    }
}
