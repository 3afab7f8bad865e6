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

struct Reconcile: PlannedCommand {
    static let configuration = CommandConfiguration(abstract: "Replay failed or unsettled commands until they settle.")
    static let arrivesWith = "the reconciler"
    @Flag(help: "One pass, then exit.") var once = false
    @OptionGroup var database: DatabaseOptions
}
