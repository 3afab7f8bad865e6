import EventLog
import LedgerDomain

extension FoldableEvent {
    /// The domain event this row holds, and where and when it was recorded.
    public func ledgerEvent() throws -> (LedgerEvent, EventContext) {
        let event = try LedgerEvent.decode(type: type, schemaVersion: schemaVersion, data: data, embedding: embedding)
        return (event, EventContext(collectionId: collectionId, position: position, recordedAt: recordedAt))
    }
}

/// A state and the log position it reflects.
public struct FoldedState: Sendable {
    public var state = LedgerState()
    public var position: Int64 = 0
    /// How many events were folded.
    public var eventCount: Int64 = 0
    public init() {}
}
