/// What `faceledger revert` does: the association changes that bring faces back to their owners at
/// an earlier instant, computed without I/O.
public struct RevertPlan: Sendable, Hashable {
    /// One face to give back: from its current owner to the one it had then (nil: no owner).
    public struct Step: Sendable, Hashable {
        public var faceId: String
        public var currentOwner: String?
        public var formerOwner: String?

        public init(faceId: String, currentOwner: String?, formerOwner: String?) {
            self.faceId = faceId
            self.currentOwner = currentOwner
            self.formerOwner = formerOwner
        }
    }

    /// A face that cannot go back, and why (deleted since, or its former user is gone).
    public struct Skip: Sendable, Hashable {
        public var faceId: String
        public var reason: String
    }

    public var steps: [Step]
    public var skipped: [Skip]

    /// Plans the undoing of the association changes made after the instant.
    ///
    /// - Parameters:
    ///   - then: the collection at the instant (nil if it did not exist yet).
    ///   - now: the collection as it is.
    ///   - changes: the events recorded after the instant, in order, with the principal that caused each.
    ///   - principal: undo only this principal's changes: a face is given back only if its last
    ///     association change came from them; later changes by others stay in place.
    public static func plan(
        then: FaceCollection?, now: FaceCollection, changes: [(event: LedgerEvent, principal: String)],
        principal: String?
    ) -> RevertPlan {
        var lastChangeBy: [String: String] = [:]
        var order: [String] = []
        for (event, by) in changes {
            let faceId: String
            switch event {
            case .faceAssociated(let e): faceId = e.faceId
            case .faceDisassociated(let e): faceId = e.faceId
            default: continue
            }
            if lastChangeBy[faceId] == nil { order.append(faceId) }
            lastChangeBy[faceId] = by
        }
        var steps: [Step] = []
        var skipped: [Skip] = []
        for faceId in order {
            if let principal, lastChangeBy[faceId] != principal { continue }
            let formerOwner = then?.faces[faceId]?.userId
            guard let face = now.faces[faceId] else {
                skipped.append(Skip(faceId: faceId, reason: "the face was deleted since"))
                continue
            }
            guard face.userId != formerOwner else { continue }
            if let formerOwner, now.users[formerOwner] == nil {
                skipped.append(Skip(faceId: faceId, reason: "its former user \(formerOwner) no longer exists"))
                continue
            }
            steps.append(Step(faceId: faceId, currentOwner: face.userId, formerOwner: formerOwner))
        }
        return RevertPlan(steps: steps, skipped: skipped)
    }

    /// The commands that carry the plan out: disassociations first, then associations, per user, in
    /// lists of at most 100. Re-associations skip the match threshold: the face was the user's before.
    public func commands(collectionId: String) -> [LedgerCommand] {
        func grouped(_ pairs: [(user: String, face: String)]) -> [(String, [String])] {
            var users: [String] = []
            var faces: [String: [String]] = [:]
            for (user, face) in pairs {
                if faces[user] == nil { users.append(user) }
                faces[user, default: []].append(face)
            }
            return users.flatMap { user in
                stride(from: 0, to: faces[user]!.count, by: Limits.faceIdsPerAssociation).map { start in
                    (user, Array(faces[user]![start..<min(start + Limits.faceIdsPerAssociation, faces[user]!.count)]))
                }
            }
        }
        let disassociations = grouped(steps.compactMap { step in step.currentOwner.map { ($0, step.faceId) } })
            .map { LedgerCommand.disassociateFaces(collectionId: collectionId, userId: $0.0, faceIds: $0.1) }
        let associations = grouped(steps.compactMap { step in step.formerOwner.map { ($0, step.faceId) } })
            .map { LedgerCommand.associateFaces(collectionId: collectionId, userId: $0.0, faceIds: $0.1, userMatchThreshold: 0) }
        return disassociations + associations
    }
}
