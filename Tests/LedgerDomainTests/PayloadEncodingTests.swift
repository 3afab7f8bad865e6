import Foundation
import Testing

@testable import LedgerDomain

/// The payloads written by hand (`CommandAccepted`, `CommandSettled`, `FaceAssociated`) hold what
/// `JSONEncoder` writes for them, and read back as the events they came from.
@Suite("Payload encoding: the hand-built payloads are what JSONEncoder writes")
struct PayloadEncodingTests {
    @Test("command records and associations encode to JSONEncoder's members and values, and decode back to themselves")
    func agreesWithJSONEncoder() throws {
        let request = JSONValue.object([
            "CollectionId": .string("c"), "FaceIds": .array([.string("f"), .string("g/h")]), "FaceMatchThreshold": .number(80.5),
            "Whole": .number(100), "MaxUsers": .integer(3), "Text": .string("quote\" back\\ line\n ü \u{01}"),
            "Nested": .object(["a": .null, "b": .bool(true), "c": .array([])]),
        ])
        let events: [(event: LedgerEvent, payload: any Encodable)] = [
            CommandAccepted(request: request), CommandAccepted(request: .object([:]), upstreamToken: "token-1"),
            CommandSettled(response: request, requestHash: "c918a7cc"), CommandSettled(response: .object([:]), requestHash: ""),
            FaceAssociated(faceId: "f", userId: "u"), FaceAssociated(faceId: "f\"ü", userId: "u\n", confidence: 99.99573665851467),
            FaceAssociated(faceId: "f", userId: "u", confidence: 100), FaceAssociated(faceId: "f", userId: "u", confidence: 1e-7),
        ].map { payload in
            switch payload {
            case let accepted as CommandAccepted: (.commandAccepted(accepted), accepted)
            case let settled as CommandSettled: (.commandSettled(settled), settled)
            case let associated as FaceAssociated: (.faceAssociated(associated), associated)
            default: fatalError("not a hand-built payload")
            }
        }
        for (event, payload) in events {
            let encoded = try event.encoded()
            // JSONValue's equality is JSON's: the same members, numbers equal whichever way written.
            let byHand = try JSONValue(parsing: Data(encoded.data.utf8))
            let byEncoder = try JSONValue(parsing: try CanonicalJSON.encode(payload))
            #expect(byHand == byEncoder, "\(encoded.data)")
            let decoded = try LedgerEvent.decode(
                type: encoded.type, schemaVersion: encoded.schemaVersion, data: encoded.data, embedding: encoded.embedding)
            #expect(decoded == event, "\(encoded.data)")
        }
    }

    @Test("a confidence that is not a number is refused, as JSONEncoder refuses it")
    func nonFiniteConfidence() {
        for confidence in [Double.nan, .infinity, -.infinity] {
            #expect(throws: EncodingError.self) {
                try LedgerEvent.faceAssociated(FaceAssociated(faceId: "f", userId: "u", confidence: confidence)).encoded()
            }
        }
    }
}
