import Foundation
import LedgerDomain
import Testing

@Suite("The reconciler's retry policy")
struct RetryPolicyTests {
    let policy = RetryPolicy(base: 1, cap: 60, maxAge: 3600)
    let accepted = Date(timeIntervalSince1970: 1_000_000)

    private func wait(_ attempts: Int, jitter: Double, after seconds: TimeInterval = 10) -> TimeInterval? {
        let now = accepted.addingTimeInterval(seconds)
        guard case .retry(let at) = policy.next(afterAttempts: attempts, acceptedAt: accepted, now: now, jitter: jitter) else { return nil }
        return at.timeIntervalSince(now)
    }

    @Test("the ceiling doubles with each attempt up to the cap; the jitter picks within it, never below the base")
    func backOff() {
        #expect([1, 2, 3, 4, 5, 6, 7, 8].map { wait($0, jitter: 1) } == [1, 2, 4, 8, 16, 32, 60, 60])
        #expect(wait(5, jitter: 0.5) == 8)
        #expect(wait(5, jitter: 0) == 1)
        #expect(wait(1000, jitter: 1) == 60)  // no overflow, however many attempts
    }

    @Test("past its maximum age a command is abandoned; just before it, the last attempt is at the deadline")
    func abandon() {
        #expect(policy.next(afterAttempts: 3, acceptedAt: accepted, now: accepted.addingTimeInterval(3600), jitter: 0.5) == .abandon)
        #expect(wait(10, jitter: 1, after: 3590) == 10)
    }
}
