/// The upstream's users and associations of one collection, as `reconcile --check` read them.
public struct UpstreamObservation: Sendable, Hashable {
    /// Every user upstream.
    public var users: Set<String>
    /// Every face upstream, with its user when it has one.
    public var faces: [String: String?]

    public init(users: Set<String>, faces: [String: String?]) {
        self.users = users
        self.faces = faces
    }
}

extension LedgerState {
    /// The events that bring the ledger's view of collection `id` in line with what was observed
    /// upstream (`reconcile --check --adopt`): faces and users the ledger never saw, associations that
    /// differ, users and faces the upstream no longer has. Empty when they agree.
    public func adoption(of observed: UpstreamObservation, in id: String) -> [LedgerEvent] {
        var events: [LedgerEvent] = []
        let collection = collections[id]
        if collection == nil { events.append(.collectionCreated(CollectionCreated(collectionId: id, arn: ""))) }
        let faces = collection?.faces ?? [:]
        let users = collection?.users ?? [:]
        for faceId in observed.faces.keys.sorted() where faces[faceId] == nil {
            events.append(.faceImported(FaceImported(faceId: faceId, imageId: "", confidence: 0), embedding: []))
        }
        for userId in observed.users.sorted() where users[userId] == nil {
            events.append(.userCreated(UserCreated(userId: userId)))
        }
        var associations: [LedgerEvent] = []
        for faceId in Set(faces.keys).union(observed.faces.keys).sorted() {
            let ledgerOwner = faces[faceId]?.userId
            let upstreamOwner = observed.faces[faceId] ?? nil
            guard ledgerOwner != upstreamOwner else { continue }
            if let ledgerOwner { events.append(.faceDisassociated(FaceDisassociated(faceId: faceId, userId: ledgerOwner))) }
            if let upstreamOwner { associations.append(.faceAssociated(FaceAssociated(faceId: faceId, userId: upstreamOwner))) }
        }
        events += associations
        for userId in users.keys.sorted() where !observed.users.contains(userId) {
            events.append(.userDeleted(UserDeleted(userId: userId)))
        }
        for faceId in faces.keys.sorted() where observed.faces[faceId] == nil {
            events.append(.faceDeleted(FaceDeleted(faceId: faceId)))
        }
        return events
    }
}

extension LedgerEvent {
    /// One line saying what an adopted event records, for `reconcile --check`.
    public var adoptionSummary: String {
        switch self {
        case .collectionCreated(let e): "collection \(e.collectionId): upstream only"
        case .faceImported(let e, _): "face \(e.faceId): upstream only"
        case .userCreated(let e): "user \(e.userId): upstream only"
        case .faceDisassociated(let e): "face \(e.faceId): associated with user \(e.userId) in the ledger, not upstream"
        case .faceAssociated(let e): "face \(e.faceId): associated with user \(e.userId) upstream, not in the ledger"
        case .userDeleted(let e): "user \(e.userId): in the ledger only"
        case .faceDeleted(let e): "face \(e.faceId): in the ledger only"
        default: "\(self)"
        }
    }
}
