import Foundation
import HTTPTypes
import HummingbirdTesting
import LedgerDomain
import NIOCore
import Testing

/// An AWS JSON 1.1 response as a client reads it: the status, the headers, and the body as JSON.
struct AWSReply: Sendable {
    let status: Int
    let headers: HTTPFields
    let body: [UInt8]
    /// The body as JSON, numbers keeping their kind (`100.0` is a `number`, `100` an `integer`); nil if it is not JSON.
    let json: JSONValue?

    init(_ response: TestResponse) {
        status = response.status.code
        headers = response.headers
        body = Array(response.body.readableBytesView)
        json = try? JSONValue(parsing: Data(body))
    }

    func header(_ name: String) -> String? { HTTPField.Name(name).flatMap { headers[$0] } }

    var requestId: String? { header("x-amzn-RequestId") }
    /// The error's `__type`, as botocore reads it.
    var errorType: String? { json?["__type"]?.stringValue }
    var message: String? { json?["message"]?.stringValue }
    /// The body's members, for shape checks.
    var members: Set<String> {
        guard case .object(let members)? = json else { return [] }
        return Set(members.keys)
    }
}

/// Expects the AWS error envelope exactly as the server renders every error: `status`, `__type` and
/// `message` the only members of the body, the type echoed in `x-amzn-ErrorType`, the AWS JSON 1.1
/// content type, and a request id.
func expectError(
    _ reply: AWSReply, _ status: Int, _ type: String, _ message: String, _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(reply.status == status, comment, sourceLocation: sourceLocation)
    #expect(reply.errorType == type, comment, sourceLocation: sourceLocation)
    #expect(reply.message == message, comment, sourceLocation: sourceLocation)
    #expect(reply.members == ["__type", "message"], comment, sourceLocation: sourceLocation)
    #expect(reply.header("x-amzn-ErrorType") == type, comment, sourceLocation: sourceLocation)
    #expect(reply.header("Content-Type") == "application/x-amz-json-1.1", comment, sourceLocation: sourceLocation)
    #expect(reply.requestId.flatMap(UUID.init(uuidString:)) != nil, comment, sourceLocation: sourceLocation)
}

/// InvalidParameterException (400) with `message`.
func expectInvalidParameter(
    _ reply: AWSReply, _ message: String, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    expectError(reply, 400, "InvalidParameterException", message, comment, sourceLocation: sourceLocation)
}

/// A 200 with a JSON body and no error type; returns the body.
@discardableResult
func expectSuccess(_ reply: AWSReply, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
    #expect(
        reply.status == 200, "\(comment.map { "\($0): " } ?? "")\(String(decoding: reply.body, as: UTF8.self))",
        sourceLocation: sourceLocation)
    #expect(reply.header("x-amzn-ErrorType") == nil, comment, sourceLocation: sourceLocation)
    #expect(reply.header("Content-Type") == "application/x-amz-json-1.1", comment, sourceLocation: sourceLocation)
    #expect(reply.requestId.flatMap(UUID.init(uuidString:)) != nil, comment, sourceLocation: sourceLocation)
    return try #require(reply.json, comment, sourceLocation: sourceLocation)
}

extension JSONValue {
    /// The members of an object (empty for anything else).
    var objectValue: [String: JSONValue] {
        if case .object(let members) = self { return members }
        return [:]
    }

    /// True for a number written with a fraction or exponent (`100.0`), as the model's float members are.
    var isFloat: Bool {
        if case .number = self { return true }
        return false
    }
}
