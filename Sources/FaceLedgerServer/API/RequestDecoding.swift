import Foundation
import LedgerDomain

/// Turning request bodies into request values, with AWS-style errors.
enum RequestDecoding {
    static func decode<R: Decodable>(_: R.Type, from body: [UInt8]) throws -> R {
        let data = body.isEmpty ? Data("{}".utf8) : Data(body)
        guard body.isEmpty || (String(validating: body, as: UTF8.self) != nil && JSONSyntax.isObject(body)) else {
            throw LedgerError(.serialization, "The request body is not a JSON object")
        }
        do {
            return try JSONDecoder().decode(R.self, from: data)
        } catch let DecodingError.typeMismatch(type, context) {
            throw LedgerError.invalidParameter("Value at '\(path(context))' must be of type \(typeName(type))")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw LedgerError.invalidParameter("Value at '\(path(context))' does not fit the member's type")
        } catch DecodingError.dataCorrupted {
            throw LedgerError.invalidParameter("A number in the request does not fit its member's type")
        } catch let DecodingError.valueNotFound(type, context) {
            throw LedgerError.invalidParameter("Value null at '\(path(context))' must be of type \(typeName(type))")
        } catch {
            throw LedgerError.invalidParameter("The request does not match the operation's input")
        }
    }

    private static func path(_ context: DecodingError.Context) -> String {
        context.codingPath.map { $0.intValue.map { String($0 + 1) } ?? $0.stringValue }.joined(separator: ".")
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "string"
        case is Int.Type: "integer"
        case is Double.Type, is Float.Type: "number"
        case is [String].Type, is [Double].Type, is [Any].Type: "list"
        default: "structure"
        }
    }

    /// The CollectionId member of an undecodable body, if there is one.
    static func rawCollectionId(_ body: [UInt8]) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["CollectionId"] as? String
    }

    /// A valid collection id, else '' (where requests that name none are recorded).
    static func collectionId(_ value: String?) -> String {
        guard let value else { return "" }
        var validator = Validator()
        validator.check(value, "collectionId", Validator.collectionId)
        return validator.problems.isEmpty ? value : ""
    }
}
