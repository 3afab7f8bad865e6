import Dispatch
import EventLog
import LedgerDomain
import Synchronization

/// Decodes and folds pages of events on a thread of its own, in the order they are handed over, so
/// that reading the next page (on the caller's thread) overlaps folding this one: a rebuild's two
/// halves on two cores.
///
/// At most `depth` pages wait; `fold` blocks past that, so memory stays a few pages above the state.
final class BackgroundFold: @unchecked Sendable {
    // Only touched on `queue` (and by `finish()`, once the queue has drained).
    private var folded = FoldedState()
    private let failure = Mutex<(any Error)?>(nil)
    private let queue = DispatchQueue(label: "faceledger.fold")
    private let room: DispatchSemaphore

    init(depth: Int = 2) { room = DispatchSemaphore(value: depth) }

    /// Hands over a page; throws at once if an earlier page failed to decode (the fold has stopped).
    func fold(_ events: [FoldEvent]) throws {
        room.wait()
        if let error = failure.withLock({ $0 }) {
            room.signal()
            throw error
        }
        queue.async { [self] in
            defer { room.signal() }
            guard failure.withLock({ $0 == nil }) else { return }
            do {
                try folded.fold(events)
            } catch {
                failure.withLock { $0 = $0 ?? error }
            }
        }
    }

    /// Waits for every page handed over and returns the state they fold into.
    func finish() throws -> FoldedState {
        try queue.sync {
            if let error = failure.withLock({ $0 }) { throw error }
            return folded
        }
    }
}
