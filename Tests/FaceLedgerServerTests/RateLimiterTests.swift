import Testing

@testable import FaceLedgerServer

@Suite("Per-key rate limits")
struct RateLimiterTests {
    static func key(rate: Double?) -> AccessKey {
        AccessKey(accessKeyId: "AKID", secretAccessKey: "secret", principal: "p", role: .writer, requestsPerSecond: rate)
    }

    @Test("rate=0.5 admits one request, then one every two seconds")
    func rateBelowOne() {
        let limiter = RateLimiter()
        let key = Self.key(rate: 0.5)
        let start = ContinuousClock.now
        #expect(limiter.admit(key, now: start))
        #expect(!limiter.admit(key, now: start))
        #expect(!limiter.admit(key, now: start + .milliseconds(1900)))
        #expect(limiter.admit(key, now: start + .milliseconds(2000)))
        #expect(!limiter.admit(key, now: start + .milliseconds(2100)))
        // A long pause fills the bucket to one request, not more.
        #expect(limiter.admit(key, now: start + .seconds(60)))
        #expect(!limiter.admit(key, now: start + .seconds(60)))
    }

    @Test("rate=N bursts N, then N per second; no rate is no limit")
    func burstThenRate() {
        let limiter = RateLimiter()
        let key = Self.key(rate: 3)
        let start = ContinuousClock.now
        #expect((0..<5).map { _ in limiter.admit(key, now: start) } == [true, true, true, false, false])
        #expect(limiter.admit(key, now: start + .milliseconds(340)))
        #expect(!limiter.admit(key, now: start + .milliseconds(340)))
        let free = Self.key(rate: nil)
        #expect((0..<1000).allSatisfy { _ in limiter.admit(free, now: start) })
    }
}
