/// An error from the PostgreSQL layer.
///
/// The `description` names the kind of failure and the SQLSTATE only: the server's message can echo
/// SQL text or data, so it is kept in `serverMessage` for logs and never shown to clients.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, broadly.
    public enum Code: Sendable, Hashable {
        /// The connection could not be established.
        case connectionFailed
        /// The connection broke while in use; the statement's outcome is unknown.
        case connectionLost
        /// The server answered with an error; `sqlState` says which.
        case server
        /// A column could not be decoded as the requested Swift type.
        case decoding
        /// No connection became free within the pool's wait timeout.
        case poolTimeout
        /// The pool or connection was closed.
        case closed
        /// libpq reported something the layer does not expect.
        case client
    }

    public let code: Code
    /// The five-character SQLSTATE, when the server sent one.
    public let sqlState: SQLState?
    /// The server's or libpq's own message: may contain SQL or data, so for logs only.
    public let serverMessage: String
    /// The server's DETAIL field, when it sent one (for logs, or for callers that raise it themselves).
    public let detail: String?

    public init(_ code: Code, sqlState: SQLState? = nil, serverMessage: String = "", detail: String? = nil) {
        self.code = code
        self.sqlState = sqlState
        self.serverMessage = serverMessage
        self.detail = detail
    }

    public var description: String {
        switch code {
        case .connectionFailed: "PostgreSQL connection failed"
        case .connectionLost: "PostgreSQL connection lost"
        case .server: "PostgreSQL error \(sqlState?.code ?? "?????")"
        case .decoding: "PostgreSQL result decoding failed"
        case .poolTimeout: "PostgreSQL connection pool timed out"
        case .closed: "PostgreSQL connection closed"
        case .client: "PostgreSQL client error"
        }
    }

    /// True when the statement gave up waiting: a lock it needed was held past `lock_timeout`, or it
    /// ran past `statement_timeout`. The database is there, but busy: a retry later may succeed.
    public var isTimeout: Bool {
        code == .server && (sqlState == .lockNotAvailable || sqlState == .queryCanceled)
    }

    /// True when the failure is about reaching the database rather than about the statement.
    public var isConnectivityProblem: Bool {
        switch code {
        case .connectionFailed, .connectionLost, .poolTimeout, .closed: true
        case .server: sqlState?.isConnectivityProblem ?? false
        case .decoding, .client: false
        }
    }
}

/// The database refused the commit that `PostgresSession.transaction(_:committingLater:)` left pending,
/// when a later round trip carried it: that transaction was rolled back, and nothing sent after it in
/// that round trip ran.
public struct PostgresPendingCommitFailed: Error, Sendable {
    public let error: PostgresError

    public init(error: PostgresError) { self.error = error }
}

/// A SQLSTATE code, with names for the ones the project reacts to.
public struct SQLState: Sendable, Hashable, CustomStringConvertible {
    public let code: String
    public init(_ code: String) { self.code = code }
    public var description: String { code }

    public static let uniqueViolation = SQLState("23505")
    public static let serializationFailure = SQLState("40001")
    public static let deadlockDetected = SQLState("40P01")
    public static let raiseException = SQLState("P0001")
    public static let undefinedTable = SQLState("42P01")
    public static let adminShutdown = SQLState("57P01")
    public static let cannotConnectNow = SQLState("57P03")
    public static let queryCanceled = SQLState("57014")
    public static let lockNotAvailable = SQLState("55P03")

    /// Class 08 (connection exception) and the shutdown codes of class 57.
    var isConnectivityProblem: Bool {
        code.hasPrefix("08") || self == .adminShutdown || self == .cannotConnectNow || code == "57P02"
    }
}
