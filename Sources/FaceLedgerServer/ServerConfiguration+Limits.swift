import Foundation

/// The HTTP front's limits, resolved: set in the configuration, else from the environment, else
/// the default. A malformed environment value is an error, not silently the default.
extension ServerConfiguration {
    public static let defaultMaxBodyBytesInFlight = 256 << 20
    public static let defaultIdleTimeout = Duration.seconds(60)

    /// At least 1 MiB, so that every operation can be served (an ImportFaces body larger than the
    /// budget gets 503).
    func resolvedMaxBodyBytesInFlight(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int {
        let name = "FACELEDGER_MAX_BODY_BYTES_IN_FLIGHT"
        let bytes =
            try maxBodyBytesInFlight ?? environment[name].map { text in
                guard let value = Int(text) else { throw ServerConfigurationError(description: "\(name) must be a number of bytes") }
                return value
            } ?? Self.defaultMaxBodyBytesInFlight
        guard bytes >= Operation.defaultMaxBodyBytes else {
            throw ServerConfigurationError(description: "\(name) must be at least \(Operation.defaultMaxBodyBytes) bytes (1 MiB)")
        }
        return bytes
    }

    /// More than 0 seconds.
    func resolvedIdleTimeout(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Duration {
        let name = "FACELEDGER_IDLE_TIMEOUT"
        let timeout =
            try idleTimeout ?? environment[name].map { text in
                guard let seconds = Double(text), seconds.isFinite, seconds > 0, seconds <= 86_400 else {
                    throw ServerConfigurationError(description: "\(name) must be a number of seconds, more than 0 and at most 86400")
                }
                return Duration.milliseconds(Int64((seconds * 1000).rounded()))
            } ?? Self.defaultIdleTimeout
        guard timeout > .zero else { throw ServerConfigurationError(description: "\(name) must be more than 0 seconds") }
        return timeout
    }
}

public struct ServerConfigurationError: Error, CustomStringConvertible {
    public let description: String
}

/// When `GET /ready` says not ready.
enum ReadinessLimits {
    /// The oldest event the projector has not folded may be at most this old: past it, reads answer
    /// from read models too stale to count as serving.
    static let projectorLagSeconds = 30.0
}
