import Synchronization

/// A process-wide budget of request-body bytes being read or held, so that memory stays bounded
/// however many large requests arrive at once: a request reserves its bytes before it reads them
/// (its declared `Content-Length`, or chunk by chunk without one) and gives them back when it is
/// answered. What the budget cannot take is refused at once (503), not queued: a client retries
/// with back-off, and the server never holds more than `capacity` bytes of bodies.
final class BodyBudget: Sendable {
    let capacity: Int
    private let used = Atomic<Int>(0)

    init(capacity: Int) { self.capacity = capacity }

    /// Takes `bytes` from the budget if it has them; false (and nothing taken) otherwise.
    func reserve(_ bytes: Int) -> Bool {
        guard bytes >= 0 else { return false }
        var current = used.load(ordering: .relaxed)
        while true {
            guard bytes <= capacity - current else { return false }
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + bytes, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
    }

    func release(_ bytes: Int) {
        used.subtract(bytes, ordering: .acquiringAndReleasing)
    }

    /// Bytes reserved now (for tests and logs).
    var inUse: Int { used.load(ordering: .relaxed) }
}

/// One request's share of a `BodyBudget`: grows as its body is read, and must be given back with
/// `releaseAll()` (in a `defer`) when the request is answered.
struct BodyReservation: ~Copyable {
    let budget: BodyBudget
    private(set) var bytes = 0

    init(budget: BodyBudget) { self.budget = budget }

    /// Grows the reservation to at least `total` bytes; false if the budget cannot take them.
    mutating func grow(to total: Int) -> Bool {
        guard total > bytes else { return true }
        guard budget.reserve(total - bytes) else { return false }
        bytes = total
        return true
    }

    mutating func releaseAll() {
        budget.release(bytes)
        bytes = 0
    }
}
