import ArgumentParser

/// How long `serve` lets a request wait for the database.
struct DeadlineOptions: ParsableArguments {
    @Option(name: .customLong("request-deadline"),
            help: "Seconds a request may wait for the database (a lock, the command queue, connecting) before it is answered 503 ServiceUnavailableException (default: 5; env FACELEDGER_REQUEST_DEADLINE).")
    var requestDeadline: Double?

    /// The deadline from the flag, else its environment variable, else 5 s.
    func resolved() throws -> Duration {
        let seconds = try requestDeadline ?? environmentValue(forFlag: "request-deadline").map {
            guard let seconds = Double($0) else { throw ValidationError("FACELEDGER_REQUEST_DEADLINE is not a number") }
            return seconds
        } ?? 5
        guard seconds.isFinite, seconds >= 0.1, seconds <= 3600 else {
            throw ValidationError("--request-deadline must be between 0.1 and 3600 seconds")
        }
        return .milliseconds(Int(seconds * 1000))
    }
}
