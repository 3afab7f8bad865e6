import ArgumentParser
import FaceLedgerServer
import Foundation
import Logging
import Postgres

/// The environment variable of a flag, e.g. `database-url` → `FACELEDGER_DATABASE_URL`.
func environmentName(forFlag flag: String) -> String {
    "FACELEDGER_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
}

/// Reads `FACELEDGER_<FLAG>` for a flag; nil when unset or empty.
func environmentValue(forFlag flag: String) -> String? {
    guard let value = ProcessInfo.processInfo.environment[environmentName(forFlag: flag)], !value.isEmpty else { return nil }
    return value
}

/// The value of a flag: the command line, else its environment variable, else the default.
func resolve(_ value: String?, flag: String, default defaultValue: String) -> String {
    value ?? environmentValue(forFlag: flag) ?? defaultValue
}

/// A required option's value: the command line, else its environment variable.
func required(_ value: String?, flag: String) throws -> String {
    guard let value = value ?? environmentValue(forFlag: flag) else {
        throw ValidationError("missing --\(flag) (or \(environmentName(forFlag: flag)))")
    }
    return value
}

/// An on/off flag: on when given on the command line, else as its environment variable says
/// (1/true/yes or 0/false/no).
func resolveFlag(_ given: Bool, flag: String) throws -> Bool {
    if given { return true }
    guard let value = environmentValue(forFlag: flag) else { return false }
    switch value.lowercased() {
    case "1", "true", "yes": return true
    case "0", "false", "no": return false
    default: throw ValidationError("\(environmentName(forFlag: flag))=\(value): expected 1, true, yes, 0, false or no")
    }
}

/// A flag in seconds: the command line, else its environment variable, else the default; an error
/// unless it is a number within `range`.
func seconds(_ given: Double?, flag: String, default defaultValue: Double, range: ClosedRange<Double>) throws -> Double {
    let value =
        try given ?? environmentValue(forFlag: flag).map {
            guard let value = Double($0) else { throw ValidationError("\(environmentName(forFlag: flag)) is not a number") }
            return value
        } ?? defaultValue
    guard value.isFinite, range.contains(value) else {
        func plain(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }
        throw ValidationError("--\(flag) must be between \(plain(range.lowerBound)) and \(plain(range.upperBound)) seconds")
    }
    return value
}

/// Who a command-line command acts as in the ledger: `operator:<login name>`.
func operatorPrincipal() -> String {
    "operator:" + (ProcessInfo.processInfo.environment["USER"] ?? NSUserName())
}

/// A failure while running a command, as opposed to a misuse of it: ArgumentParser prints it alone
/// (`Error: …`, no usage banner, which is for ValidationError) and exits with status 1. Bad usage
/// keeps ValidationError and status 64.
struct RuntimeError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Where the database is: shared by every command that touches it.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .customLong("database-url"),
        help:
            "libpq connection string or URI (postgresql://user@host:port/db); env FACELEDGER_DATABASE_URL. Without it: the embedded cluster under --data-dir."
    )
    var databaseURL: String?

    @Option(
        name: .customLong("data-dir"),
        help: "Folder for FaceLedger's own files and the embedded PostgreSQL (default: .faceledger; env FACELEDGER_DATA_DIR).")
    var dataDirectory: String?

    var resolvedDatabaseURL: String? { databaseURL ?? environmentValue(forFlag: "database-url") }
    var resolvedDataDirectory: String { resolve(dataDirectory, flag: "data-dir", default: ".faceledger") }

    func open(asServer: Bool = false, logger: Logger) async throws -> DatabaseTarget {
        try await DatabaseTarget.open(
            databaseURL: resolvedDatabaseURL, dataDirectory: resolvedDataDirectory, asServer: asServer, logger: logger)
    }

    /// Runs `body` with a connection to the command's database; closes it (and stops an embedded
    /// cluster this command started) afterwards.
    func withConnection<T>(logger: Logger, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let target = try await open(logger: logger)
        defer { target.close(logger: logger) }
        return try await PostgresConnection.with(target.conninfo, body)
    }
}

/// Log lines go to standard error; standard output is kept for the commands' own output.
/// The process's logger, to standard error: lines of text, or one JSON object a line with
/// `format` `json`. The level and format default to `FACELEDGER_LOG_LEVEL` and `FACELEDGER_LOG_FORMAT`,
/// else `info` and `text`.
func makeLogger(level: Logger.Level? = nil, format: LogFormat? = nil) -> Logger {
    let level = level ?? environmentValue(forFlag: "log-level").flatMap(Logger.Level.init(rawValue:)) ?? .info
    let format = format ?? environmentValue(forFlag: "log-format").flatMap(LogFormat.init(rawValue:)) ?? .text
    LoggingSystem.bootstrap { label in
        switch format {
        case .text:
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }
    return Logger(label: "faceledger")
}

/// How log records are written.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Writes a line to standard output at once (stdout is block-buffered when it is a pipe).
func printLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
