import ArgumentParser
import EventLog
import FaceLedgerServer
import Foundation
import LedgerDomain
import LedgerService
import Postgres

struct Forget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Destroy the biometrics of faces (a data subject's request), keeping the ledger whole.",
        discussion: """
            Destroys the data keys of the faces' embeddings, so that nothing — the API, the audit, a rebuild, \
            `state --as-of` any instant — can read them again, and records a FaceForgotten event per face under the \
            operator's principal (operator:<login name>) with --reason. The faces stay, with their users and history; \
            searches no longer match them; `verify` still passes. The same as the API's FaceLedger.ForgetFaces.
            """)

    @Option(help: "The collection (required; env FACELEDGER_COLLECTION).") var collection: String?
    @Option(name: .customLong("face-id"), parsing: .upToNextOption, help: "The faces to forget (--face-id A B, or the flag repeated).")
    var faceIds: [String] = []
    @Option(help: "Why, recorded with each FaceForgotten event (env FACELEDGER_REASON).") var reason: String?
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var masterKey: MasterKeyOptions

    func run() async throws {
        let collection = try required(self.collection, flag: "collection")
        guard !faceIds.isEmpty else { throw ValidationError("give the faces to forget with --face-id") }
        let reason = self.reason ?? environmentValue(forFlag: "reason")
        let biometrics = Biometrics(masterKeys: try masterKey.resolved(database: database))
        let logger = makeLogger()
        let principal = operatorPrincipal()
        let target = try await database.open(logger: logger)
        defer { target.close(logger: logger) }
        let outcome = try await PostgresConnection.with(target.conninfo) { connection in
            try await connection.run { try biometrics.verify(in: $0) }
            let processor = CommandProcessor(conninfo: target.conninfo, logger: logger, biometrics: biometrics)
            return try await processor.running {
                var request: [String: JSONValue] = ["CollectionId": .string(collection), "FaceIds": .array(faceIds.map(JSONValue.string))]
                if let reason { request["Reason"] = .string(reason) }
                return await processor.submit(
                    CommandSubmission(
                        operation: "ForgetFaces", collectionId: collection, recordedRequest: .object(request), requestHash: "",
                        command: .success(.forgetFaces(collectionId: collection, faceIds: faceIds, reason: reason)),
                        metadata: EventMetadata(
                            principal: principal, requestId: UUID().uuidString, operation: "ForgetFaces",
                            sourceAddress: "faceledger forget")))
            }
        }
        switch outcome {
        case .success(let response):
            let forgotten = response["ForgottenFaces"]?.arrayValue.compactMap(\.stringValue) ?? []
            for face in forgotten { printLine("forgotten: \(face)") }
            let missing = response["UnsuccessfulFaceForgets"]?.arrayValue.compactMap { $0["FaceId"]?.stringValue } ?? []
            for face in missing { FileHandle.standardError.write(Data("not found: \(face)\n".utf8)) }
            if !missing.isEmpty { throw ExitCode.failure }
        case .failure(let error):
            throw RuntimeError(error.message)
        }
    }
}

struct RotateMasterKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-master-key",
        abstract: "Re-wrap every face data key under the current master key, without touching the log.",
        discussion: """
            With --new-key-file FILE: writes a new master key file (mode 0600) holding a new key followed by the keys \
            of --master-key-file, and exits. Give that file to every server (they read a changed key file again by \
            themselves), then run `faceledger rotate-master-key --master-key-file FILE`: it re-wraps every data key \
            that is not under the file's first key, while servers keep serving. When it reports none left, the old \
            keys can be removed from the file.
            """)

    @Option(name: .customLong("new-key-file"), help: "Write a new master key file: a new key first, then the current file's keys.")
    var newKeyFile: String?
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var masterKey: MasterKeyOptions

    func run() async throws {
        if let newKeyFile {
            var contents = MasterKeys.newKeyFile()
            // The current keys follow the new one (the embedded default's <data-dir>/master-key too).
            if let current = try? masterKey.resolved(database: database).file {
                guard let old = try? String(contentsOfFile: current, encoding: .utf8) else {
                    throw RuntimeError("cannot read the master key file \(current)")
                }
                contents += Array("# the previous keys, until rotate-master-key has re-wrapped everything:\n\(old)".utf8)
            }
            guard try PrivateFile.createIfAbsent(newKeyFile, contents: contents) else {
                throw RuntimeError("\(newKeyFile) exists already: give a new file")
            }
            printLine("wrote \(newKeyFile)")
            return
        }
        let biometrics = Biometrics(masterKeys: try masterKey.resolved(database: database))
        let (total, left) = try await database.withConnection(logger: makeLogger()) { connection in
            try await connection.run { session in
                var total = 0
                while case let count = try biometrics.rewrap(limit: 1000, in: session), count > 0 { total += count }
                return (total, try biometrics.keysUnderOlderMasterKeys(in: session))
            }
        }
        printLine("re-wrapped \(total) data keys under master key \(biometrics.masterKeys.current.id); \(left) left under older keys")
        if left > 0 {
            // Held by a concurrent change, or written by a server that has not read the new key file yet.
            FileHandle.standardError.write(
                Data(
                    """
                    some data keys are still under older master keys: run rotate-master-key again once every server has the new \
                    key file, and keep the older keys in the file until none is left

                    """.utf8))
            throw ExitCode.failure
        }
    }
}

struct EncryptLog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt-log",
        abstract: "One-off: encrypt the embeddings a log written before encryption holds in clear.",
        discussion: """
            For logs written by a FaceLedger before embeddings were encrypted: gives every such embedding a data key \
            and encrypts it, then computes the hash chain again over the whole log. Run it once, as the schema's \
            owner, with no server running; then `faceledger verify` passes on the new chain, and digests signed \
            before no longer verify (sign a new one with `faceledger digest`). A log with nothing in clear is left \
            as it is.
            """)

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var masterKey: MasterKeyOptions

    func run() async throws {
        let biometrics = Biometrics(masterKeys: try masterKey.resolved(database: database))
        let count = try await database.withConnection(logger: makeLogger()) { connection in
            try await connection.run { session in
                try biometrics.verify(in: session)
                return try biometrics.encryptLegacyEmbeddings(in: session)
            }
        }
        printLine(
            count == 0
                ? "no embedding in clear: nothing changed"
                : "encrypted \(count) embeddings and computed the hash chain again: sign a new digest")
    }
}
