import Foundation
import Synchronization

/// Token buckets per access key: a key with `requestsPerSecond` N may burst N requests, then N per
/// second. Keys without a limit are never throttled.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }
    private let buckets = Mutex<[String: Bucket]>([:])

    /// Takes one token for the key; false when its bucket is empty.
    func admit(_ key: AccessKey, now: ContinuousClock.Instant = .now) -> Bool {
        guard let rate = key.requestsPerSecond else { return true }
        return buckets.withLock { buckets in
            var bucket = buckets[key.accessKeyId] ?? Bucket(tokens: rate, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(rate, bucket.tokens + seconds * rate)
            bucket.updated = now
            let admitted = bucket.tokens >= 1
            if admitted { bucket.tokens -= 1 }
            buckets[key.accessKeyId] = bucket
            return admitted
        }
    }
}
