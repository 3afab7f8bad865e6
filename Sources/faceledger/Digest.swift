import ArgumentParser
import EventLog
import FaceLedgerServer
import Foundation
import Postgres

struct DigestLog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "digest",
        abstract: "Print the log's head (position, hash, time) signed with the digest key, as JSON.",
        discussion: """
            Save the output somewhere the database's administrators cannot write; later, \
            `faceledger verify --digest FILE` proves the log still extends it. The key is an Ed25519 key in \
            --key-file, by default <data-dir>/digest-key, created (mode 0600) on first use. Prints \
            {"hash", "position", "public_key", "signature", "time"}.
            """)

    @Option(
        name: .customLong("key-file"),
        help: "The Ed25519 signing key (default: <data-dir>/digest-key, created on first use; env FACELEDGER_KEY_FILE).")
    var keyFile: String?
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let key = try loadOrCreateKey()
        let digest = try await database.withConnection(logger: makeLogger()) { connection in
            try await connection.run { session in try LogDigest.ofHead(in: session, key: key) }
        }
        guard let digest else { throw RuntimeError("the event log is empty: there is no head to sign") }
        printLine(try digest.json())
    }

    /// Reads the key file, or creates it with a fresh key when it does not exist, whole and private
    /// (`PrivateFile`); if another process created its key first, that one is used.
    private func loadOrCreateKey() throws -> DigestKey {
        let path: String
        if let given = keyFile ?? environmentValue(forFlag: "key-file") {
            path = given
        } else {
            try DataDirectory.prepare(database.resolvedDataDirectory)
            path = URL(fileURLWithPath: database.resolvedDataDirectory).appendingPathComponent("digest-key").path
        }
        if try PrivateFile.createIfAbsent(path, contents: Array(DigestKey.generateFileContents().utf8)) {
            FileHandle.standardError.write(Data("created a new digest key in \(path)\n".utf8))
        }
        guard let contents = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw RuntimeError("cannot read the digest key \(path)")
        }
        guard let key = DigestKey(fileContents: contents) else {
            throw RuntimeError("\(path) is not a digest key (one line: the base64 of a 32-byte Ed25519 private key)")
        }
        return key
    }
}
