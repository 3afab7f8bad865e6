import Foundation
import LedgerDomain
import RekognitionWire
import Testing

/// A state built through `evolve`, as the real one is.
struct Given {
    var state = LedgerState()
    var position: Int64 = 0
    let collectionId = "c"

    mutating func apply(_ events: [LedgerEvent]) {
        for event in events {
            position += 1
            state.evolve(event, EventContext(collectionId: collectionId, position: position, recordedAt: Date()))
        }
    }

    mutating func run(_ command: LedgerCommand) -> Decision {
        let decision = state.decide(command)
        apply(decision.events)
        return decision
    }

    static func collection(users: [String] = [], faces: [String: [Float]] = [:]) -> Given {
        var given = Given()
        given.apply([.collectionCreated(CollectionCreated(collectionId: "c", arn: "arn:c"))])
        given.apply(users.map { .userCreated(UserCreated(userId: $0)) })
        given.apply(
            faces.sorted { $0.key < $1.key }.map { id, embedding in
                .faceImported(FaceImported(faceId: id, imageId: "img-" + id, confidence: 100), embedding: embedding)
            })
        return given
    }
}

func face(_ n: Int) -> String { String(format: "00000000-0000-0000-0000-%012d", n) }

extension Decision {
    var response: AssociateFacesResponse? {
        guard case .success(let json) = rendered else { return nil }
        return try? JSONDecoder().decode(AssociateFacesResponse.self, from: json.data)
    }
    var error: LedgerError? {
        guard case .failure(let error) = rendered else { return nil }
        return error
    }
}

@Suite("AssociateFaces, rule by rule")
struct AssociateFacesTests {
    let x: [Float] = [1, 0]
    let nearX: [Float] = [0.95, 0.05]
    let y: [Float] = [0, 1]

    @Test("unknown collection or user: ResourceNotFoundException")
    func unknownCollectionOrUser() {
        var given = Given.collection(users: ["u"])
        #expect(
            given.run(.associateFaces(collectionId: "other", userId: "u", faceIds: [face(1)], userMatchThreshold: 75)).error?.code
                == .resourceNotFound)
        #expect(
            given.run(.associateFaces(collectionId: "c", userId: "nobody", faceIds: [face(1)], userMatchThreshold: 75)).error?.code
                == .resourceNotFound)
    }

    @Test("the first faces of a user are not held to the threshold")
    func thresholdOnlyWhenUserHasFaces() {
        var given = Given.collection(users: ["u"], faces: [face(1): x, face(2): y])
        let first = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1), face(2)], userMatchThreshold: 100))
        #expect(first.response?.AssociatedFaces.map(\.FaceId) == [face(1), face(2)])
        #expect(first.response?.UserStatus == .updating)
    }

    @Test("faces of one request are scored against the user as it stood before; order does not matter")
    func scoredAgainstUserBeforeRequest() {
        for order in [[face(2), face(3)], [face(3), face(2)]] {
            var given = Given.collection(users: ["u"], faces: [face(1): x, face(2): y, face(3): [0.1, 1]])
            _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 75))
            // Against x alone, y and (0.1, 1) are far; had face 2 joined first, face 3 would have been closer.
            let decision = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: order, userMatchThreshold: 50))
            #expect(decision.response?.AssociatedFaces.isEmpty == true)
            #expect(Set(decision.response?.UnsuccessfulFaceAssociations.map(\.FaceId) ?? []) == [face(2), face(3)])
        }
    }

    @Test("LOW_MATCH_CONFIDENCE carries the confidence; the default threshold is 75")
    func lowMatchConfidence() throws {
        var given = Given.collection(users: ["u"], faces: [face(1): x, face(2): [1, 1], face(3): nearX])
        _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: Limits.defaultUserMatchThreshold))
        let decision = given.run(
            .associateFaces(
                collectionId: "c", userId: "u", faceIds: [face(2), face(3)],
                userMatchThreshold: Limits.defaultUserMatchThreshold))
        let response = try #require(decision.response)
        #expect(response.AssociatedFaces.map(\.FaceId) == [face(3)])
        let refused = try #require(response.UnsuccessfulFaceAssociations.first)
        #expect(refused.FaceId == face(2))
        #expect(refused.Reasons == ["LOW_MATCH_CONFIDENCE"])
        #expect(abs((refused.Confidence ?? 0) - 100 * (1 / 2.0.squareRoot())) < 0.001)  // cos 45° = 70.7 < 75
    }

    @Test("a face already associated with this user is left out of both lists")
    func alreadyAssociatedLeftOut() {
        var given = Given.collection(users: ["u"], faces: [face(1): x])
        _ = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 75))
        let again = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 75))
        #expect(again.response?.AssociatedFaces == [])
        #expect(again.response?.UnsuccessfulFaceAssociations == [])
        #expect(again.response?.UserStatus == .active)
        #expect(again.events.contains(.faceAttempted(FaceAttempted(faceId: face(1), userId: "u", outcome: .unchanged))))
    }

    @Test("a face not in the collection: FACE_NOT_FOUND")
    func faceNotFound() {
        var given = Given.collection(users: ["u"])
        let decision = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(9)], userMatchThreshold: 75))
        #expect(decision.response?.UnsuccessfulFaceAssociations == [UnsuccessfulFace(FaceId: face(9), Reasons: ["FACE_NOT_FOUND"])])
        #expect(decision.response?.UserStatus == .created)
    }

    @Test("a face owned by another user: ASSOCIATED_TO_A_DIFFERENT_USER with the owner")
    func ownedByAnother() {
        var given = Given.collection(users: ["u", "v"], faces: [face(1): x])
        _ = given.run(.associateFaces(collectionId: "c", userId: "v", faceIds: [face(1)], userMatchThreshold: 75))
        let decision = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 75))
        #expect(
            decision.response?.UnsuccessfulFaceAssociations == [
                UnsuccessfulFace(FaceId: face(1), UserId: "v", Reasons: ["ASSOCIATED_TO_A_DIFFERENT_USER"])
            ])
        #expect(given.state.collections["c"]?.faces[face(1)]?.userId == "v")
    }

    @Test("100 faces per user: full before the request is ServiceQuotaExceeded; overflow is unsuccessful with no reasons")
    func faceLimit() throws {
        var faces: [String: [Float]] = [:]
        for n in 1...105 { faces[face(n)] = [1, Float(n) / 1000] }
        var given = Given.collection(users: ["u"], faces: faces)
        let first = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: (1...98).map(face), userMatchThreshold: 0))
        #expect(first.response?.AssociatedFaces.count == 98)
        let second = try #require(
            given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: (99...103).map(face), userMatchThreshold: 0)).response)
        #expect(second.AssociatedFaces.map(\.FaceId) == [face(99), face(100)])
        #expect(second.UnsuccessfulFaceAssociations == (101...103).map { UnsuccessfulFace(FaceId: face($0), Reasons: []) })
        #expect(given.state.collections["c"]?.users["u"]?.faceIds.count == 100)
        let full = given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(104)], userMatchThreshold: 0))
        #expect(full.error?.code == .serviceQuotaExceeded)
        #expect(full.events.isEmpty)
    }

    @Test("UserStatus: CREATED without faces, UPDATING when faces changed, ACTIVE when settled with faces")
    func userStatus() {
        #expect(UserStatus.settled(faceCount: 0) == .created)
        #expect(UserStatus.settled(faceCount: 3) == .active)
        var given = Given.collection(users: ["u"], faces: [face(1): x])
        #expect(
            given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(1)], userMatchThreshold: 75)).response?.UserStatus == .updating)
        #expect(
            given.run(.associateFaces(collectionId: "c", userId: "u", faceIds: [face(2)], userMatchThreshold: 75)).response?.UserStatus == .active)
    }

    @Test("confidence is 100 × max(0, cos) against normalize(Σ normalize(e))")
    func confidenceMath() throws {
        let user = try #require(Similarity.userVector([[2, 0], [0, 5]]))  // unit vectors summed: (1, 1)/√2
        #expect(abs(Similarity.confidence([1, 0], against: user) - 100 / 2.0.squareRoot()) < 1e-9)
        #expect(Similarity.confidence([-1, 0], against: user) == 0)
        #expect(abs(Similarity.similarity([3, 3], [1, 1]) - 100) < 1e-9)
    }
}
