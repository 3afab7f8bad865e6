import CLibPQ
import Foundation

/// Synchronous access to one libpq connection.
///
/// A session is handed to closures that `PostgresConnection.run` executes on the connection's own
/// thread; it must not escape them. Every statement is parameterised and, after its first use, a
/// prepared statement on this connection.
public final class PostgresSession {
    private let conninfo: String
    private let settings: SessionSettings
    private var conn: OpaquePointer?
    /// Prepared statements of this connection, by SQL text and parameter types.
    private var preparedStatements: [StatementKey: String] = [:]
    /// The `BEGIN` of a transaction whose first statement has not been sent yet: it travels with that
    /// statement, in the same round trip (`transaction`).
    private var pendingBegin: String?
    /// The last statements and the `COMMIT` of a transaction that returned without sending them
    /// (`transaction(_:committingLater:)`): they go first in the session's next round trip.
    private var pendingCommit: [PostgresStatement]?
    /// How long `ensureConnected` keeps retrying a database that does not answer.
    let reconnectTimeout: Duration
    /// Counts the connections this session has made: unchanged between two statements means they ran
    /// on the same connection, so on the same run of the server (a commit not yet flushed when the
    /// server stopped is gone with that run).
    public private(set) var connectionNumber = 0

    private struct StatementKey: Hashable {
        let sql: String
        let types: [UInt32]
    }

    init(conninfo: String, reconnectTimeout: Duration, settings: SessionSettings = .none) {
        self.conninfo = conninfo
        self.reconnectTimeout = reconnectTimeout
        self.settings = settings
    }

    deinit { if let conn { PQfinish(conn) } }

    // MARK: Connection lifecycle

    /// Connects if needed; reconnects when the server closed the connection (a restart, say).
    /// `PostgresConnection.run` does this before its body; a body that runs several transactions
    /// calls it before each.
    public func ensureConnected() throws {
        if let conn, PQstatus(conn) == CONNECTION_OK, !serverClosedIdleConnection(conn) { return }
        try reconnect()
    }

    /// True when an idle connection has been closed by the server. An idle socket that turns readable
    /// carries the server's goodbye (or the end of the stream); reading it settles the status.
    private func serverClosedIdleConnection(_ conn: OpaquePointer) -> Bool {
        for _ in 0..<3 {
            guard socketIsReadable(conn, timeoutMilliseconds: 0) else { return false }
            if PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK { return true }
            discardNotifications(conn)
        }
        return PQstatus(conn) != CONNECTION_OK
    }

    private func reconnect() throws {
        preparedStatements.removeAll()
        // A transaction left open with its commit pending is gone with the old connection.
        pendingCommit = nil
        let deadline = ContinuousClock.now + reconnectTimeout
        var delay = Duration.milliseconds(25)
        while true {
            if let conn {
                PQreset(conn)
            } else {
                conn = connect()
                if let conn { PQsetNoticeProcessor(conn, { _, _ in }, nil) }
            }
            guard let conn else { throw PostgresError(.connectionFailed, serverMessage: "out of memory") }
            if PQstatus(conn) == CONNECTION_OK {
                connectionNumber += 1
                try applyRuntimeParameters()
                return
            }
            let message = Self.message(conn)
            if ContinuousClock.now + delay > deadline {
                throw PostgresError(.connectionFailed, serverMessage: message)
            }
            Thread.sleep(forTimeInterval: delay / .seconds(1))
            delay = min(delay * 2, .seconds(1))
        }
    }

    /// Opens a connection with the settings' defaults first and the connection string last, so that
    /// what the user wrote wins (libpq keeps the last value of a repeated keyword).
    private func connect() -> OpaquePointer? {
        let defaults = settings.connectionDefaults.sorted { $0.key < $1.key }
        let keywords = defaults.map(\.key) + ["dbname"]
        let values = defaults.map(\.value) + [conninfo]
        return withCStrings(keywords) { keywords in
            withCStrings(values) { values in PQconnectdbParams(keywords, values, 1) }
        }
    }

    /// Sets the run-time parameters; a reset connection is a new session that has lost them.
    private func applyRuntimeParameters() throws {
        guard !settings.runtimeParameters.isEmpty else { return }
        let parameters = settings.runtimeParameters.sorted { $0.key < $1.key }
        try query(
            "SELECT set_config(name, value, false) FROM unnest($1::text[], $2::text[]) AS p(name, value)",
            [.textArray(parameters.map(\.key)), .textArray(parameters.map(\.value))])
    }

    func close() {
        if let conn { PQfinish(conn) }
        conn = nil
        preparedStatements.removeAll()
    }

    private func connected() throws -> OpaquePointer {
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            throw PostgresError(.connectionLost, serverMessage: conn.map(Self.message) ?? "not connected")
        }
        return conn
    }

    // MARK: Statements

    /// Runs one parameterised statement and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) throws -> [PostgresRow] {
        try execute(sql, parameters).rows
    }

    /// Runs one parameterised statement; returns its rows and the number of rows it affected.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = []) throws -> PostgresResult {
        if pendingBegin != nil || pendingCommit != nil { return try pipeline([PostgresStatement(sql, parameters)])[0] }
        let conn = try connected()
        let name = try preparedStatementName(sql: sql, parameters: parameters, conn: conn)
        let result = try PostgresParameters(parameters).withCArrays { count, _, values, lengths, formats in
            PQexecPrepared(conn, name, count, values, lengths, formats, 1)
        }
        return try consume(result, conn: conn)
    }

    /// Runs SQL text with no parameters through the simple-query protocol: several statements at once,
    /// for migration scripts and transaction control. Never for text built from input.
    public func executeScript(_ sql: String) throws {
        try completePendingCommit()
        let conn = try connected()
        let begin = pendingBegin.map { $0 + ";\n" } ?? ""
        pendingBegin = nil
        _ = try consume(PQexec(conn, begin + sql), conn: conn)
    }

    private func preparedStatementName(sql: String, parameters: [PostgresValue], conn: OpaquePointer) throws -> String {
        let key = StatementKey(sql: sql, types: parameters.map(\.typeOID))
        if let name = preparedStatements[key] { return name }
        let name = "s\(preparedStatements.count)"
        let types = key.types.map { Oid($0) }
        let result = PQprepare(conn, name, sql, Int32(types.count), types)
        _ = try consume(result, conn: conn)
        preparedStatements[key] = name
        return name
    }

    // MARK: Transactions

    /// The isolation levels a transaction can ask for.
    public enum IsolationLevel: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    ///
    /// The `BEGIN` is not sent on its own: it goes with the transaction's first statement (a round trip
    /// fewer for every transaction). A transaction that ran no statement sends nothing.
    public func transaction<T>(_ isolation: IsolationLevel = .readCommitted, _ body: () throws -> T) throws -> T {
        pendingBegin = "BEGIN ISOLATION LEVEL \(isolation.rawValue)"
        do {
            let result = try body()
            if pendingBegin != nil {
                pendingBegin = nil
                return result
            }
            // Committed already, with its last statements (`transaction(_:committingWith:)`), or to be
            // committed with the next round trip (`transaction(_:committingLater:)`).
            if pendingCommit != nil { return result }
            if let conn, PQtransactionStatus(conn) == PQTRANS_IDLE { return result }
            try executeScript("COMMIT")
            return result
        } catch {
            pendingBegin = nil
            // An earlier transaction's commit still pending goes first; its failure is the one to report.
            try completePendingCommit()
            if let conn, PQstatus(conn) == CONNECTION_OK, PQtransactionStatus(conn) != PQTRANS_IDLE {
                try? executeScript("ROLLBACK")
            }
            throw error
        }
    }

    /// Runs `body` in a transaction like `transaction(_:_:)`, and sends the statements it returns with
    /// the `COMMIT`, in one pipeline: a round trip fewer for a transaction that ends with writes. When one
    /// of them fails, the `COMMIT` does not run and the transaction is rolled back.
    public func transaction<T>(
        _ isolation: IsolationLevel = .readCommitted, committingWith body: () throws -> (T, last: [PostgresStatement])
    ) throws -> T {
        try transaction(isolation) {
            let (result, last) = try body()
            if !last.isEmpty { _ = try pipeline(last + [PostgresStatement("COMMIT")]) }
            return result
        }
    }

    /// Runs `body` in a transaction like `transaction(_:committingWith:)`, but leaves the statements it
    /// returns and the `COMMIT` pending: they go first in the session's next round trip (the next
    /// transaction's first statements, say), or in `completePendingCommit()`. A round trip fewer for
    /// each transaction in a row; the caller must not count on the commit until that round trip returns.
    ///
    /// When the database refuses one of the pending statements, the round trip that carried them throws
    /// `PostgresPendingCommitFailed`, whichever call sent them: that transaction was rolled back, and
    /// nothing after it in the round trip ran. A connection lost on the way is thrown as it is: then the
    /// transaction's outcome is unknown, as for any commit in flight.
    public func transaction<T>(
        _ isolation: IsolationLevel = .readCommitted, committingLater body: () throws -> (T, last: [PostgresStatement])
    ) throws -> T {
        try transaction(isolation) {
            let (result, last) = try body()
            // A transaction that sent nothing yet takes its BEGIN along.
            let begin = pendingBegin.map { [PostgresStatement($0)] } ?? []
            pendingBegin = nil
            pendingCommit = begin + last + [PostgresStatement("COMMIT")]
            return result
        }
    }

    /// Sends the commit `transaction(_:committingLater:)` left pending, if any, and waits for it: once
    /// this returns, that transaction has committed.
    public func completePendingCommit() throws {
        guard let pending = pendingCommit else { return }
        pendingCommit = nil
        // A transaction begun since, with nothing sent yet, begins after this one ends.
        let begin = pendingBegin
        pendingBegin = nil
        defer { pendingBegin = begin }
        do {
            _ = try pipeline(pending)
        } catch let error as PostgresError where error.code == .server {
            if let conn, PQstatus(conn) == CONNECTION_OK, PQtransactionStatus(conn) != PQTRANS_IDLE {
                try? executeScript("ROLLBACK")
            }
            throw PostgresPendingCommitFailed(error: error)
        }
    }

    // MARK: Pipeline

    /// Sends every statement before reading any result (libpq's pipeline mode): one round trip for
    /// the batch. The statements run in one implicit transaction: if one fails, none takes effect and
    /// the first error is thrown. Like `execute`, each is a prepared statement after its first use
    /// (prepared within the pipeline itself), so it is parsed and planned once per connection.
    public func pipeline(_ statements: [PostgresStatement]) throws -> [PostgresResult] {
        do {
            return try sendPipeline(statements)
        } catch let error as PostgresPendingCommitFailed {
            // The failed transaction is still open (aborted); nothing of the caller's ran after it.
            if let conn, PQstatus(conn) == CONNECTION_OK, PQtransactionStatus(conn) != PQTRANS_IDLE {
                try? executeScript("ROLLBACK")
            }
            throw error
        }
    }

    private func sendPipeline(_ statements: [PostgresStatement]) throws -> [PostgresResult] {
        let conn = try connected()
        guard !statements.isEmpty else { return [] }
        // An earlier transaction's pending commit goes first, then a transaction's pending BEGIN; their
        // results are not the caller's.
        let commit = pendingCommit ?? []
        pendingCommit = nil
        let begin = pendingBegin.map { PostgresStatement($0) }
        pendingBegin = nil
        let notTheCallers = commit.count + (begin == nil ? 0 : 1)
        let statements = commit + (begin.map { [$0] } ?? []) + statements
        guard PQenterPipelineMode(conn) == 1 else { throw PostgresError(.client, serverMessage: Self.message(conn)) }
        // Non-blocking while sending, reading input whenever the socket is full, so a large batch cannot
        // deadlock with a server that is blocked writing results we have not read yet.
        PQsetnonblocking(conn, 1)
        defer {
            PQsetnonblocking(conn, 0)
            PQexitPipelineMode(conn)
        }
        // What the pipeline's results answer, in order: a statement being prepared, or a statement run.
        enum Answer {
            case prepared(StatementKey, name: String)
            case rows
        }
        var answers: [Answer] = []
        var preparing: [StatementKey: String] = [:]
        for statement in statements {
            let key = StatementKey(sql: statement.sql, types: statement.parameters.map(\.typeOID))
            let sent = try PostgresParameters(statement.parameters).withCArrays { count, types, values, lengths, formats in
                var name = preparedStatements[key] ?? preparing[key]
                if name == nil {
                    let newName = "s\(preparedStatements.count + preparing.count)"
                    guard PQsendPrepare(conn, newName, statement.sql, count, types) == 1 else { return Int32(0) }
                    preparing[key] = newName
                    answers.append(.prepared(key, name: newName))
                    name = newName
                }
                answers.append(.rows)
                return PQsendQueryPrepared(conn, name, count, values, lengths, formats, 1)
            }
            guard sent == 1 else { throw lostOrClientError(conn) }
            try flush(conn)
        }
        guard PQpipelineSync(conn) == 1 else { throw lostOrClientError(conn) }
        try flush(conn)

        var results: [PostgresResult] = []
        var firstError: (any Error)?
        /// The index in `statements` of the statement that failed first.
        var failed = 0
        var answered = 0
        var statementsAnswered = 0
        while true {
            try awaitResult(conn)
            guard let result = PQgetResult(conn) else { continue }  // NULL ends one statement's results
            let status = PQresultStatus(result)
            if status == PGRES_PIPELINE_SYNC {
                PQclear(result)
                break
            }
            let answer = answers[answered]
            answered += 1
            let statement = statementsAnswered
            if case .rows = answer { statementsAnswered += 1 }
            if status == PGRES_PIPELINE_ABORTED {
                PQclear(result)
                continue
            }
            do {
                let consumed = try consume(result, conn: conn)
                switch answer {
                case .prepared(let key, let name): preparedStatements[key] = name
                case .rows: results.append(consumed)
                }
            } catch {
                if firstError == nil { (firstError, failed) = (error, statement) }
            }
        }
        if let firstError {
            if failed < commit.count, let error = firstError as? PostgresError, error.code == .server {
                throw PostgresPendingCommitFailed(error: error)
            }
            throw firstError
        }
        return Array(results.dropFirst(notTheCallers))
    }

    /// Pushes buffered output to the server, reading input while the socket is not writable.
    private func flush(_ conn: OpaquePointer) throws {
        while true {
            switch PQflush(conn) {
            case 0: return
            case 1:
                waitForSocket(conn, events: Int16(POLLIN | POLLOUT), timeoutMilliseconds: 1000)
                guard PQconsumeInput(conn) == 1 else { throw lostOrClientError(conn) }
            default: throw lostOrClientError(conn)
            }
        }
    }

    /// Waits, in non-blocking mode, until `PQgetResult` would not block.
    private func awaitResult(_ conn: OpaquePointer) throws {
        while PQisBusy(conn) == 1 {
            waitForSocket(conn, events: Int16(POLLIN), timeoutMilliseconds: 1000)
            guard PQconsumeInput(conn) == 1 else { throw lostOrClientError(conn) }
        }
    }

    // MARK: Results

    /// Turns a libpq result into rows or a typed error, and frees it.
    private func consume(_ result: OpaquePointer?, conn: OpaquePointer) throws -> PostgresResult {
        guard let result else { throw lostOrClientError(conn) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return PostgresResult(result)
        default:
            if PQstatus(conn) != CONNECTION_OK {
                throw PostgresError(.connectionLost, serverMessage: Self.message(conn))
            }
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { SQLState(String(cString: $0)) }
            let message = PQresultErrorMessage(result).map { String(cString: $0) } ?? ""
            let detail = PQresultErrorField(result, Int32(UInt8(ascii: "D"))).map { String(cString: $0) }
            if let state, state.isConnectivityProblem {
                throw PostgresError(.connectionLost, sqlState: state, serverMessage: message, detail: detail)
            }
            throw PostgresError(state == nil ? .client : .server, sqlState: state, serverMessage: message, detail: detail)
        }
    }

    private func lostOrClientError(_ conn: OpaquePointer) -> PostgresError {
        PostgresError(PQstatus(conn) == CONNECTION_OK ? .client : .connectionLost, serverMessage: Self.message(conn))
    }

    static func message(_ conn: OpaquePointer) -> String {
        PQerrorMessage(conn).map { String(cString: $0) }?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    // MARK: Notifications (used by the listener)

    /// Runs `LISTEN` for a channel. Channel names are fixed identifiers of the project, checked here,
    /// because `LISTEN` takes no parameters.
    func listen(_ channel: String) throws {
        precondition(PostgresListener.isValidChannel(channel), "invalid channel name")
        try executeScript("LISTEN \(channel)")
    }

    /// Waits up to `timeoutMilliseconds` for input, then returns the notifications that arrived.
    func receiveNotifications(timeoutMilliseconds: Int32) throws -> [PostgresNotification] {
        let conn = try connected()
        waitForSocket(conn, events: Int16(POLLIN), timeoutMilliseconds: timeoutMilliseconds)
        guard PQconsumeInput(conn) == 1, PQstatus(conn) == CONNECTION_OK else {
            throw PostgresError(.connectionLost, serverMessage: Self.message(conn))
        }
        var received: [PostgresNotification] = []
        while let notify = PQnotifies(conn) {
            received.append(
                PostgresNotification(
                    channel: String(cString: notify.pointee.relname),
                    payload: String(cString: notify.pointee.extra)))
            PQfreemem(notify)
        }
        return received
    }

    private func discardNotifications(_ conn: OpaquePointer) {
        while let notify = PQnotifies(conn) { PQfreemem(notify) }
    }

    private func socketIsReadable(_ conn: OpaquePointer, timeoutMilliseconds: Int32) -> Bool {
        waitForSocket(conn, events: Int16(POLLIN), timeoutMilliseconds: timeoutMilliseconds) & Int16(POLLIN | POLLHUP | POLLERR) != 0
    }

    @discardableResult
    private func waitForSocket(_ conn: OpaquePointer, events: Int16, timeoutMilliseconds: Int32) -> Int16 {
        let socket = PQsocket(conn)
        guard socket >= 0 else { return 0 }
        var descriptor = pollfd(fd: socket, events: events, revents: 0)
        return poll(&descriptor, 1, timeoutMilliseconds) > 0 ? descriptor.revents : 0
    }
}

/// A statement and its parameters, for pipelined batches.
public struct PostgresStatement: Sendable {
    public let sql: String
    public let parameters: [PostgresValue]
    public init(_ sql: String, _ parameters: [PostgresValue] = []) {
        self.sql = sql
        self.parameters = parameters
    }
}

/// The rows of a statement and the number of rows it affected.
public struct PostgresResult: Sendable {
    public let rows: [PostgresRow]
    public let affectedRows: Int

    init(_ result: OpaquePointer) {
        let fieldCount = Int(PQnfields(result))
        let columns = (0..<fieldCount).map { i in
            PostgresColumn(name: String(cString: PQfname(result, Int32(i))), typeOID: PQftype(result, Int32(i)))
        }
        let rowCount = Int(PQntuples(result))
        var rows: [PostgresRow] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<Int32(rowCount) {
            var cells: [[UInt8]?] = []
            cells.reserveCapacity(fieldCount)
            for c in 0..<Int32(fieldCount) {
                if PQgetisnull(result, r, c) == 1 {
                    cells.append(nil)
                } else {
                    let length = Int(PQgetlength(result, r, c))
                    let start = PQgetvalue(result, r, c)!
                    cells.append(
                        start.withMemoryRebound(to: UInt8.self, capacity: length) {
                            Array(UnsafeBufferPointer(start: $0, count: length))
                        })
                }
            }
            rows.append(PostgresRow(columns: columns, cells: cells))
        }
        self.rows = rows
        self.affectedRows = Int(String(cString: PQcmdTuples(result))) ?? 0
    }
}

/// Parameters laid out as the C arrays libpq expects, all in binary format.
struct PostgresParameters {
    let values: [PostgresValue]
    init(_ values: [PostgresValue]) { self.values = values }

    /// PostgreSQL takes no field longer than 1 GiB; a longer parameter is refused here, before libpq
    /// would be handed a length that does not fit its `int`.
    static let maxParameterBytes = (1 << 30) - 1

    func withCArrays<R>(
        _ body: (Int32, [Oid], [UnsafePointer<CChar>?], [Int32], [Int32]) -> R
    ) throws -> R {
        let encoded = values.map(\.binary)
        if let size = encoded.compactMap({ $0?.count }).first(where: { $0 > Self.maxParameterBytes }) {
            throw PostgresError(.client, serverMessage: "a parameter of \(size) bytes exceeds PostgreSQL's 1 GiB field limit")
        }
        let buffers: [UnsafeMutableRawPointer?] = encoded.map { bytes in
            bytes.map { bytes in
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
                if !bytes.isEmpty { bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) } }
                return buffer
            }
        }
        defer { buffers.forEach { $0?.deallocate() } }
        return body(
            Int32(values.count),
            values.map { Oid($0.typeOID) },
            buffers.map { $0.map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) } },
            encoded.map { Int32($0?.count ?? 0) },
            Array(repeating: 1, count: values.count))
    }
}

/// Lends `strings` to C as a NULL-terminated array of NUL-terminated strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
