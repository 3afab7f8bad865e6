import HTTPTypes
import Hummingbird
import Logging
import Metrics

/// One API exchange, seen once it is answered: counted in the metrics and written to the access log.
struct ExchangeObservation {
    /// The operation (`unknown` for a target FaceLedger does not serve).
    let operation: String
    /// `OK`, or the AWS error code the answer carries.
    let code: String
    let response: Response
    let duration: Duration

    init(target: String?, response: Response, duration: Duration) {
        operation = (try? Operation.from(target: target))?.rawValue ?? "unknown"
        code = response.headers[HTTPField.Name("x-amzn-ErrorType")!] ?? "OK"
        self.response = response
        self.duration = duration
    }

    /// Counts the exchange and its duration, by operation and outcome.
    func record() {
        Counter(label: "faceledger_requests_total", dimensions: [("operation", operation), ("code", code)]).increment()
        Timer(label: "faceledger_request_duration_seconds", dimensions: [("operation", operation)])
            .recordNanoseconds(duration.nanoseconds)
    }

    /// The access-log line: request id, principal (as the key names it), operation, status, error code,
    /// duration, client address. Never a key, a signature, a body or an embedding.
    func log(to logger: Logger, principal: String?, source: String?) {
        var metadata: Logger.Metadata = [
            "request_id": "\(response.headers[HTTPField.Name("x-amzn-RequestId")!] ?? "")",
            "operation": "\(operation)",
            "status": "\(response.status.code)",
            "code": "\(code)",
            "duration_ms": "\(Double(duration.nanoseconds) / 1_000_000)",
        ]
        if let principal { metadata["principal"] = "\(principal)" }
        if let source { metadata["source"] = "\(source)" }
        logger.info("request", metadata: metadata)
    }
}
