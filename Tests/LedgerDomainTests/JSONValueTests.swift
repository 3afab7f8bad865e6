import Foundation
import LedgerDomain
import RekognitionWire
import Testing

@Suite("JSON values: floats stay floats, integers stay integers")
struct JSONValueTests {
    private func text(_ value: JSONValue) -> String { String(decoding: value.data, as: UTF8.self) }

    @Test("strings are written so that they read back the same, whether they have anything to escape or not")
    func stringsReadBack() throws {
        var strings = ["", "plain", "ü 日本語 \u{1F600}", "quote\"", "back\\slash", "slash/", "\u{7F}", "a\u{2028}b"]
        strings += (0..<0x20).map { "x" + String(UnicodeScalar(UInt8($0))) + "y" }
        for string in strings {
            let written = JSONValue.object([string: .string(string)]).text
            #expect(try JSONValue(parsing: Data(written.utf8)) == .object([string: .string(string)]), "\(written)")
            let escaped = string.unicodeScalars.contains { $0.value < 0x20 || $0 == "\"" || $0 == "\\" }
            #expect((written.count > 2 * string.count + 7) == escaped, "\(written)")
        }
    }

    @Test("a whole-number Double member is written as a float, an Int member as an integer")
    func kinds() throws {
        let response = ImportFacesResponse(FaceRecords: [ImportedFaceRecord(Face: .init(FaceId: "f", ImageId: "i", Confidence: 100))])
        #expect(text(try JSONValue(encoding: response)) == #"{"FaceRecords":[{"Face":{"Confidence":100.0,"FaceId":"f","ImageId":"i"}}]}"#)
        #expect(text(try JSONValue(encoding: StatusCodeResponse(StatusCode: 200))) == #"{"StatusCode":200}"#)
        let unsuccessful = UnsuccessfulFace(FaceId: "f", Confidence: 0, Reasons: ["LOW_MATCH_CONFIDENCE"])
        #expect(text(try JSONValue(encoding: unsuccessful)) == #"{"Confidence":0.0,"FaceId":"f","Reasons":["LOW_MATCH_CONFIDENCE"]}"#)
        #expect(
            text(.array([.number(1.5), .number(1e22), .number(-0.0), .number(1_700_000_000), .integer(-3)]))
                == "[1.5,1e+22,-0.0,1700000000.0,-3]")
    }

    @Test("absent optionals are left out, non-finite numbers refused, as JSONEncoder does")
    func likeJSONEncoder() throws {
        #expect(text(try JSONValue(encoding: UnsuccessfulFace(FaceId: "f", Reasons: []))) == #"{"FaceId":"f","Reasons":[]}"#)
        #expect(throws: EncodingError.self) { try JSONValue(encoding: [Double.infinity]) }
        let strings = ["quote \" back \\ slash / tab \t nul \u{0} bell \u{7} é 😀"]
        let written = try JSONValue(encoding: strings).data
        #expect(try JSONDecoder().decode([String].self, from: written) == strings)
        #expect(String(decoding: written, as: UTF8.self).contains("\\u0000"))
    }

    @Test("parsing keeps each number's kind, so a stored response is answered as it was first")
    func parsing() throws {
        let parsed = try JSONValue(parsing: Data(#"{"a":100.0,"b":100,"c":1e2,"d":true,"e":[null,"x"],"f":0.25}"#.utf8))
        #expect(text(parsed) == #"{"a":100.0,"b":100,"c":100.0,"d":true,"e":[null,"x"],"f":0.25}"#)
        let response = try JSONValue(
            encoding: ImportFacesResponse(FaceRecords: [
                ImportedFaceRecord(Face: .init(FaceId: "f", ImageId: "i", Confidence: 100))
            ]))
        #expect(text(try JSONValue(parsing: response.data)) == text(response))
    }

    @Test("an integer and a float of the same number are the same JSON value")
    func equality() throws {
        #expect(JSONValue.integer(100) == .number(100))
        #expect(Set<JSONValue>([.integer(7), .number(7)]).count == 1)
        #expect(JSONValue.integer(1) != .number(1.5))
        // A value read back through a Decoder (which cannot see `.0`) still equals the one written.
        let written = JSONValue.object(["Confidence": .number(100), "StatusCode": .integer(200)])
        #expect(try JSONDecoder().decode(JSONValue.self, from: written.data) == written)
    }
}
