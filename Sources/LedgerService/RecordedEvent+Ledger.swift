import EventLog
import LedgerDomain

extension RecordedEvent {
    /// The domain event this row holds, and where and when it was recorded.
    public func ledgerEvent() throws -> (LedgerEvent, EventContext) {
        let event = try LedgerEvent.decode(type: type, schemaVersion: schemaVersion, data: data, embedding: embedding)
        return (event, EventContext(collectionId: collectionId, position: position, recordedAt: recordedAt))
    }
}

extension LedgerState {
    /// Folds recorded events, in order, into the state.
    public mutating func fold(_ events: [RecordedEvent]) throws {
        for recorded in events where !LedgerEvent.typesWithoutStateEffect.contains(recorded.type) {
            let (event, context) = try recorded.ledgerEvent()
            evolve(event, context)
        }
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
