import Foundation
import Testing

@testable import LedgerDomain

/// The hot payload types are read without `JSONDecoder` (`FlatJSONObject`); these hold the fast path to
/// exactly what `JSONDecoder` reads, and to declining whatever it does not read itself.
@Suite("Payload decoding: the fast path reads what JSONDecoder reads")
struct PayloadDecodingTests {
    @Test("random flat payloads of every hot type decode alike through both paths")
    func agreesWithJSONDecoder() throws {
        var generator = SystemRandomNumberGenerator()
        let strings = [
            "f", "", "abc-123", "ü", "日本語", "a b", "\u{1F600}", "quote\"inside", "back\\slash", "tab\t", "new\nline",
            "\u{7F}", "slash/",
        ]
        let numbers = [
            "0", "-0", "1", "99.5", "100", "1e-7", "1E+2", "0.30000000000000004", "-12.5e3", "12345678901234567890",
            "3.141592653589793238462643383279", "1e400", "01", "1.", ".5", "+1", "--1", "1e", "0x10", "inf", "NaN",
        ]
        func jsonString(_ value: String) -> String {
            String(decoding: try! JSONEncoder().encode(value), as: UTF8.self)
        }
        /// Mostly of the kind the types expect (a number for "confidence", a string otherwise), so that
        /// most payloads are valid and every member is, in some, the one thing wrong.
        func member(_ key: String) -> String {
            let expected = key == "confidence" ? 0 : 4
            let kind = Int.random(in: 0..<10, using: &generator) < 7 ? expected : Int.random(in: 0..<5, using: &generator)
            switch kind {
            case 0: return "\"\(key)\": \(numbers.randomElement(using: &generator)!)"
            case 1: return "\"\(key)\": null"
            case 2: return "\"\(key)\": true"
            case 3: return "\"\(key)\": {\"nested\": 1}"
            default: return "\"\(key)\": \(jsonString(strings.randomElement(using: &generator)!))"
            }
        }
        let keys = ["faceId", "userId", "imageId", "confidence", "externalImageId", "keyId", "other"]
        for _ in 0..<4000 {
            let chosen = keys.filter { _ in Int.random(in: 0..<10, using: &generator) < 8 }.shuffled(using: &generator)
            let separator = Bool.random(using: &generator) ? ", " : ","
            let text = "{" + chosen.map(member).joined(separator: separator) + "}"
            try expectAlike(FaceImported.self, .faceImported, text) { event in
                guard case .faceImported(let payload, _) = event else { return nil }
                return payload
            }
            try expectAlike(FaceAssociated.self, .faceAssociated, text) { event in
                guard case .faceAssociated(let payload) = event else { return nil }
                return payload
            }
            try expectAlike(FaceDisassociated.self, .faceDisassociated, text) { event in
                guard case .faceDisassociated(let payload) = event else { return nil }
                return payload
            }
            try expectAlike(UserCreated.self, .userCreated, text) { event in
                guard case .userCreated(let payload) = event else { return nil }
                return payload
            }
            let expectedKeyId = (try? JSONDecoder().decode(KeyReference.self, from: Data(text.utf8)))?.keyId
            #expect(LedgerEvent.keyId(inFaceImported: text) == expectedKeyId, "\(text)")
        }
    }

    @Test("the fast path declines escapes, nesting, duplicates, bad numbers and trailing text")
    func declines() {
        for text in [
            #"{"a": "x\"y"}"#, #"{"a": "\u0041"}"#, #"{"a": {"b": 1}}"#, #"{"a": [1]}"#, #"{"a": 1, "a": 2}"#,
            #"{"a": 01}"#, #"{"a": +1}"#, #"{"a": 1.}"#, #"{"a": inf}"#, #"{"a": 1e400}"#, #"{"a": 1} x"#, #"{"a" 1}"#,
            #"{"a": 1,}"#, #"["a"]"#, "", "{\"a\": \"\u{01}\"}", #"{"a": tru}"#,
        ] {
            #expect(FlatJSONObject(text) == nil, "\(text)")
        }
        let object = FlatJSONObject(#" { "s" : "ü" , "n": -1.5e2, "t": true, "z": null } "#)
        #expect(object?["s"] == .string("ü"))
        #expect(object?["n"] == .number(-150))
        #expect(object?["t"] == .bool(true))
        #expect(object?["z"] == .null)
        #expect(FlatJSONObject("{}") != nil)
    }

    private struct KeyReference: Decodable { var keyId: String? }

    private func expectAlike<T: Decodable & Equatable>(
        _ type: T.Type, _ eventType: EventType, _ text: String, payload: (LedgerEvent) -> T?
    ) throws {
        let expected = try? JSONDecoder().decode(T.self, from: Data(text.utf8))
        let decoded = try? LedgerEvent.decode(type: eventType.rawValue, schemaVersion: LedgerEvent.schemaVersion, data: text, embedding: nil)
        #expect(decoded.flatMap(payload) == expected, "\(eventType.rawValue): \(text)")
    }
}
