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
    /// - `plan_cache_mode = force_generic_plan`: each statement is planned once per session, not at
    ///   every execution. Planning was over a quarter of PostgreSQL's CPU on 32 collections, where each
    ///   command is a transaction of its own (BENCHMARKS.md). A generic plan is made without the values:
    ///   it is safe only because every statement here finds its rows by whole keys, which the plan
    ///   matches in an index whatever the statistics said when it was made. The lookups of many keys
    ///   probe one key at a time (`PartialState`): matched with `= ANY` on each column, a generic plan
    ///   made while the table was small matched only the collection and read all of it (a first start
    ///   over 200,000 faces took 63 s). Tested: a batch of every kind of command, and its fold, read a
    ///   few dozen rows of a collection that grew by 20,000 faces after their plans were made.
    public var keyLookups: SessionSettings {
        var settings = self
        settings.runtimeParameters["enable_seqscan"] = "off"
        settings.runtimeParameters["plan_cache_mode"] = "force_generic_plan"
        return settings
    }

    private static func milliseconds(_ duration: Duration) -> String {
        String(max(1, Int64(duration / .milliseconds(1)))) + "ms"
    }
}
