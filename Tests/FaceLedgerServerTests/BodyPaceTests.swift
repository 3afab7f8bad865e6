import Testing

@testable import FaceLedgerServer

@Suite("How slowly a request body may arrive")
struct BodyPaceTests {
    let start = ContinuousClock.now

    @Test("within the grace period anything goes; after it, the bytes must keep up with the minimum rate")
    func pace() {
        #expect(BodyPace.isFastEnough(received: 1, since: start, now: start + .seconds(9)))
        // A trickle: one byte a minute is cut at its first chunk after the grace period.
        #expect(!BodyPace.isFastEnough(received: 2, since: start, now: start + .seconds(59)))
        // 64 MiB at 1 MiB/s keeps up all the way.
        let mib = 1 << 20
        #expect(BodyPace.isFastEnough(received: 64 * mib, since: start, now: start + .seconds(64)))
        // At half the minimum rate it falls behind once the grace is used up.
        let half = BodyPace.minimumBytesPerSecond / 2
        #expect(BodyPace.isFastEnough(received: 10 * half, since: start, now: start + .seconds(10)))
        #expect(!BodyPace.isFastEnough(received: 30 * half, since: start, now: start + .seconds(30)))
    }
}
