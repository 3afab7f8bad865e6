import Postgres

/// Walks the hash chain from the first event, a page at a time, recomputing every hash in Swift
/// (`HashChain`) from the columns' raw bytes: the database's own functions are not trusted, since
/// whoever could alter the log could alter them too.
///
/// A changed column breaks the event's own hash; a removed, inserted or reordered event breaks the
/// hash of the event after it (its predecessor is no longer the one it was chained to). Either way
/// the walk stops at the first bad position. Removing the *last* events leaves an intact, shorter
/// chain: a signed digest (`LogDigest`) taken earlier is what catches that.
public enum LogVerification {
    /// A position and hash the log must still have there (from a digest).
    public struct Expectation: Sendable, Hashable {
        public let position: Int64
        public let hash: [UInt8]
        public init(position: Int64, hash: [UInt8]) {
            self.position = position
            self.hash = hash
        }
    }

    /// Where and why the log fails verification.
    public struct Failure: Sendable, Hashable, CustomStringConvertible {
        public let position: Int64
        public let reason: String
        public var description: String { "position \(position): \(reason)" }
    }

    public struct Report: Sendable {
        /// Events whose hashes were checked (all of them when the log is intact).
        public var events: Int64 = 0
        /// The last position checked, and its hash (nil when no event was).
        public var head: Int64 = 0
        public var headHash: [UInt8]?
        /// The first bad position, nil when the chain is intact (and extends the expectation).
        public var failure: Failure?
        public var intact: Bool { failure == nil }
        public init() {}
    }

    /// Rows per page: bounded memory whatever the log's size (embeddings are a few KiB each).
    public static let defaultPageSize = 2000

    /// Verifies the whole log in one snapshot (a read-only REPEATABLE READ transaction, so appends
    /// that commit meanwhile are neither half-seen nor mistaken for a break).
    ///
    /// - Parameter progress: called after every page with (events checked, head position at start).
    public static func run(
        in session: PostgresSession, pageSize: Int = defaultPageSize, expecting expectation: Expectation? = nil,
        progress: (Int64, Int64) -> Void = { _, _ in }
    ) throws -> Report {
        // Text columns must arrive as UTF-8, the encoding the chain is defined over.
        try session.executeScript("SET client_encoding TO 'UTF8'")
        return try session.transaction(.repeatableRead) {
            try session.executeScript("SET TRANSACTION READ ONLY")
            let total = try session.query("SELECT coalesce(max(position), 0)::bigint FROM events")[0].decode(Int64.self, at: 0)
            var report = Report()
            var previous: [UInt8]?
            var expectationMet = false
            while report.failure == nil {
                let rows = try session.query(pageSQL, [.int64(report.head), .int64(Int64(pageSize))])
                for row in rows {
                    let position: Int64 = try row.decode(at: 0)
                    let stored: [UInt8]? = try row.decode(at: HashChain.columns.count)
                    if let failure = check(
                        row: row, position: position, stored: stored, previous: previous,
                        previousPosition: report.head, expectation: expectation,
                        expectationMet: &expectationMet)
                    {
                        report.failure = failure
                        break
                    }
                    previous = stored
                    report.events += 1
                    report.head = position
                    report.headHash = stored
                }
                progress(report.events, total)
                if rows.count < pageSize { break }
            }
            if report.failure == nil, let expectation, !expectationMet {
                report.failure = Failure(
                    position: expectation.position,
                    reason: "the digest's event is gone: the log ends at position \(report.head), so events were removed")
            }
            return report
        }
    }

    private static func check(
        row: PostgresRow, position: Int64, stored: [UInt8]?, previous: [UInt8]?, previousPosition: Int64,
        expectation: Expectation?, expectationMet: inout Bool
    ) -> Failure? {
        let computed: [UInt8]
        do {
            computed = try HashChain.hash(previous: previous, row: row)
        } catch {
            return Failure(position: position, reason: "unreadable event (\(error))")
        }
        if let expectation, !expectationMet, position > expectation.position {
            return Failure(
                position: expectation.position,
                reason: "the digest's event is gone (the log goes from position \(previousPosition) to \(position))")
        }
        guard stored == computed else {
            let link =
                previousPosition == 0
                ? "or events before it were removed"
                : "or the event before it (position \(previousPosition)) is not the one it was chained to (one was removed, inserted or reordered)"
            return Failure(position: position, reason: "the hash chain breaks here: this event was altered, \(link)")
        }
        if let expectation, position == expectation.position {
            guard stored == expectation.hash else {
                return Failure(position: position, reason: "the event's hash differs from the digest's: the log was rewritten up to here")
            }
            expectationMet = true
        }
        return nil
    }

    private static let pageSQL =
        "SELECT " + HashChain.columns.joined(separator: ", ")
        + ", hash FROM events WHERE position > $1 ORDER BY position LIMIT $2"
}
