import Postgres

/// Rows of table `a` not in `b` and of `b` not in `a`, over every column: 0 when they hold the same rows.
func rowsDiffering(_ a: String, _ b: String, in session: PostgresSession) throws -> Int {
    try session.query("SELECT count(*) FROM ((TABLE \(a) EXCEPT ALL TABLE \(b)) UNION ALL (TABLE \(b) EXCEPT ALL TABLE \(a))) d")[0]
        .decode(Int.self, at: 0)
}

/// Rows of the read model `table` (`collections`, `users`, `faces`) that differ from the write model's,
/// which has the same shape and is folded with every batch.
func readModelRowsDiffering(_ table: String, in connection: PostgresConnection) async throws -> Int {
    try await connection.run { try rowsDiffering("rm_\(table)", "wm_\(table)", in: $0) }
}
