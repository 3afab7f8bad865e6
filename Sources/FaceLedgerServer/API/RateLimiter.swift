import Foundation
import Synchronization

/// Token buckets per access key: a key with `requestsPerSecond` N refills N tokens per second and
/// holds at most max(N, 1), so it may burst N requests (at least one), then N per second. A rate
/// below 1 (rate=0.5: one request every 2 s) still admits one request on a full bucket; a bucket of
/// capacity N < 1 would never hold the one token a request takes. Keys without a limit are never
/// throttled.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }
    private let buckets = Mutex<[String: Bucket]>([:])

    /// Takes one token for the key; false when its bucket is empty.
    func admit(_ key: AccessKey, now: ContinuousClock.Instant = .now) -> Bool {
        guard let rate = key.requestsPerSecond else { return true }
        let capacity = max(rate, 1)
        return buckets.withLock { buckets in
            var bucket = buckets[key.accessKeyId] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = now - bucket.updated
            let seconds = elapsed / .seconds(1)
            bucket.tokens = min(capacity, bucket.tokens + seconds * rate)
            bucket.updated = now
            let admitted = bucket.tokens >= 1
            if admitted { bucket.tokens -= 1 }
            buckets[key.accessKeyId] = bucket
            return admitted
        }
    }
}
