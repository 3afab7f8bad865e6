import ArgumentParser
import Foundation

/// `--config FILE`: flag values from a file, one `flag = value` a line (the flag's long name without
/// `--`; `#` starts a comment; a value may be quoted). The command line wins, then the `FACELEDGER_*`
/// variables, then the file: its values are exactly environment variables that are not set, so every
/// part of the program reads them the same way.
struct ConfigOptions: ParsableArguments {
    @Option(
        help:
            "A file of flag values, `flag = value` a line, e.g. `upstream = https://…`; the command line and FACELEDGER_* variables win over it (env FACELEDGER_CONFIG)."
    )
    var config: String?

    /// Reads the file, if one is given, and sets the variables it stands for. A key that names no
    /// flag of `command` is an error (a typo would otherwise be silently ignored).
    func apply(to command: any ParsableCommand.Type) throws {
        guard let path = config ?? environmentValue(forFlag: "config") else { return }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read the config file \(path)")
        }
        let help = command.helpMessage(includeHidden: true, columns: 100_000)
        for (number, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw ValidationError("\(path):\(number + 1): expected `flag = value`")
            }
            let flag = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let quote = value.first, quote == "\"" || quote == "'", value.last == quote {
                value = String(value.dropFirst().dropLast())
            }
            guard !flag.isEmpty, flag != "config", help.contains("--\(flag) ") || help.contains("--\(flag)\n") else {
                throw ValidationError("\(path):\(number + 1): `\(flag)` is not a flag of this command")
            }
            let name = environmentName(forFlag: flag)
            if ProcessInfo.processInfo.environment[name] == nil { setenv(name, value, 1) }
        }
    }
}
