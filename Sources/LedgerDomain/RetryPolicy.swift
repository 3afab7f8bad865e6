import Foundation

/// When the reconciler replays an unsettled upstream command, and when it gives up: exponential
/// back-off with full jitter (AWS's recommendation: `random(0, min(cap, base × 2^(attempts − 1)))`), at least
/// `base` apart, until the command is older than `maxAge`, then abandoned.
///
/// Pure: the caller passes the time and the random draw, so the schedule is testable without clocks.
public struct RetryPolicy: Sendable, Hashable {
    /// The smallest wait between two attempts.
    public var base: TimeInterval
    /// The largest wait between two attempts.
    public var cap: TimeInterval
    /// How long after its acceptance a command may stay unsettled; then it is abandoned.
    public var maxAge: TimeInterval

    public init(base: TimeInterval = 1, cap: TimeInterval = 300, maxAge: TimeInterval = 24 * 3600) {
        precondition(base > 0 && cap >= base && maxAge > 0)
        self.base = base
        self.cap = cap
        self.maxAge = maxAge
    }

    /// What to do after attempt number `attempts` (1 for the first) failed without settling.
    public enum Next: Sendable, Hashable {
        /// Try again at this time.
        case retry(at: Date)
        /// Stop: the command is past `maxAge`; record it as abandoned.
        case abandon
    }

    /// - Parameters:
    ///   - attempts: how many attempts were made, the failed one included.
    ///   - acceptedAt: when the command was accepted.
    ///   - now: the time of the failed attempt.
    ///   - jitter: a random draw in 0...1.
    public func next(afterAttempts attempts: Int, acceptedAt: Date, now: Date, jitter: Double) -> Next {
        let age = now.timeIntervalSince(acceptedAt)
        guard age < maxAge else { return .abandon }
        let ceiling = min(cap, base * pow(2, Double(min(max(attempts - 1, 0), 62))))
        let wait = max(base, ceiling * min(max(jitter, 0), 1))
        let at = now.addingTimeInterval(wait)
        // A last attempt right at the deadline rather than none past it.
        return .retry(at: min(at, acceptedAt.addingTimeInterval(maxAge)))
    }
}
