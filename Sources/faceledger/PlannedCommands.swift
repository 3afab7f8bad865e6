import ArgumentParser

/// Commands whose flags are fixed by the contract but whose work arrives with a later part of the
/// project. They parse their arguments, then say plainly that they are not available yet.
protocol PlannedCommand: AsyncParsableCommand {
    static var arrivesWith: String { get }
}

extension PlannedCommand {
    func run() async throws {
        let name = Self.configuration.commandName ?? "\(Self.self)".lowercased()
        throw RuntimeError("`faceledger \(name)` is not available yet: it arrives with \(Self.arrivesWith).")
    }
}

struct Audit: PlannedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what happened to a face or a user, or what a principal did.",
        usage: "faceledger audit face COLLECTION FACE_ID | user COLLECTION USER_ID | principal NAME [--json]")
    static let arrivesWith = "the audit queries"
    @Argument(help: "face COLLECTION FACE_ID | user COLLECTION USER_ID | principal NAME") var subject: [String] = []
    @Flag var json = false
    @OptionGroup var database: DatabaseOptions
}

struct Verify: PlannedCommand {
    static let configuration = CommandConfiguration(abstract: "Exit 0 if and only if the log's hash chain is intact.")
    static let arrivesWith = "the hash chain"
    @OptionGroup var database: DatabaseOptions
}

struct Reconcile: PlannedCommand {
    static let configuration = CommandConfiguration(abstract: "Replay failed or unsettled commands until they settle.")
    static let arrivesWith = "the reconciler"
    @Flag(help: "One pass, then exit.") var once = false
    @OptionGroup var database: DatabaseOptions
}
