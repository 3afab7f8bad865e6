import ArgumentParser
import FaceLedgerServer
import Foundation
import LedgerService

/// Where the master key is: every command that reads or writes face embeddings needs it.
struct MasterKeyOptions: ParsableArguments {
    @Option(
        name: .customLong("master-key-file"),
        help:
            "The master key file that wraps the face embeddings' keys (one base64 256-bit key a line, the current first). Required with --database-url; the embedded default creates <data-dir>/master-key (mode 0600). Env FACELEDGER_MASTER_KEY_FILE."
    )
    var masterKeyFile: String?

    /// The master keys: from --master-key-file, else (the embedded default) `<data-dir>/master-key`,
    /// created on first use. With a database URL and no key file there is nothing safe to do: an error.
    func resolved(database: DatabaseOptions) throws -> MasterKeys {
        if let file = masterKeyFile ?? environmentValue(forFlag: "master-key-file") {
            do {
                return try MasterKeys.load(file: file)
            } catch {
                throw RuntimeError("\(error)")
            }
        }
        guard database.resolvedDatabaseURL == nil else {
            throw ValidationError(
                """
                --master-key-file (or FACELEDGER_MASTER_KEY_FILE) is required with --database-url: it holds the key that \
                encrypts the face embeddings, kept apart from the database (create one with `faceledger rotate-master-key \
                --new-key-file FILE`)
                """)
        }
        let directory = database.resolvedDataDirectory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = directory + "/master-key"
        _ = try PrivateFile.createIfAbsent(file, contents: MasterKeys.newKeyFile())
        do {
            return try MasterKeys.load(file: file)
        } catch {
            throw RuntimeError("\(error)")
        }
    }
}
