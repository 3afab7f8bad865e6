import ArgumentParser

@main
struct FaceLedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faceledger",
        abstract: "An event-sourced association ledger for face identities, speaking the Amazon Rekognition user API.",
        discussion: """
            Every flag can also be set with an environment variable: FACELEDGER_ followed by the flag's name \
            in capitals with underscores (--database-url: FACELEDGER_DATABASE_URL). A flag on the command line wins.
            Without --database-url, commands use a private PostgreSQL cluster under --data-dir (the embedded default).
            """,
        subcommands: [
            Serve.self, Migrate.self, Rebuild.self, State.self, Revert.self, AuditCommand.self, VerifyLog.self, DigestLog.self,
            Reconcile.self, Forget.self, RotateMasterKey.self, EncryptLog.self, LoadTest.self,
        ])
}
