import Foundation
import LedgerDomain
import RekognitionWire

/// Turning request bodies into request values, with AWS-style errors.
enum RequestDecoding {
    /// Every operation's body goes through here, before the role check and before anything is
    /// recorded: reads, writes and the attempts an auditor is denied alike.
    static func decode<R: Decodable>(_: R.Type, from body: [UInt8]) throws -> R {
        let data = body.isEmpty ? Data("{}".utf8) : Data(body)
        if !body.isEmpty {
            guard String(validating: body, as: UTF8.self) != nil, let report = JSONSyntax.check(body) else {
                throw LedgerError(.serialization, "The request body is not a JSON object")
            }
            if let unstorable = report.unstorable { throw refusal(unstorable) }
        }
        do {
            return try JSONDecoder().decode(R.self, from: data)
        } catch let DecodingError.typeMismatch(type, context) {
            throw LedgerError.invalidParameter("Value at '\(path(context))' must be of type \(typeName(type))")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw LedgerError.invalidParameter("Value at '\(path(context))' does not fit the member's type")
        } catch DecodingError.dataCorrupted {
            // The body is valid JSON (checked above), so a number did not fit its member (a fraction or
            // 1e30 for an integer, 1e400 for any number); the decoder does not say which one.
            guard let (path, literal) = unfitNumber(R.self, in: body) else {
                throw LedgerError.invalidParameter("A number in the request does not fit its member's type")
            }
            throw LedgerError.invalidParameter("Value '\(shown(literal))' at '\(path)' does not fit the member's number type")
        } catch let DecodingError.valueNotFound(type, context) {
            throw LedgerError.invalidParameter("Value null at '\(path(context))' must be of type \(typeName(type))")
        } catch {
            throw LedgerError.invalidParameter("The request does not match the operation's input")
        }
    }

    /// The message never holds the offending string (it is recorded with the rejection).
    private static func refusal(_ unstorable: JSONSyntax.Unstorable) -> LedgerError {
        let character = unstorable.problem == .nul ? "the character U+0000" : "an unpaired UTF-16 surrogate"
        let at = unstorable.path.joined(separator: ".")
        if unstorable.inKey {
            return .invalidParameter(
                "A member name \(at.isEmpty ? "of the request" : "at '\(at)'") is invalid: it must not contain \(character)")
        }
        return .invalidParameter("Value at '\(at)' must not contain \(character)")
    }

    /// Finds the number the decoder refused by decoding `R` from bodies that keep one member (or
    /// element) at a time, narrowing down from the top. Bounded, since it only shapes a message.
    private static func unfitNumber<R: Decodable>(_: R.Type, in body: [UInt8]) -> (path: String, literal: String)? {
        var attempts = 10_000
        func fails(_ text: String) -> Bool {
            attempts -= 1
            do {
                _ = try JSONDecoder().decode(R.self, from: Data(text.utf8))
                return false
            } catch DecodingError.dataCorrupted(let context) {
                return context.codingPath.isEmpty
            } catch {
                return false
            }
        }
        func narrow(_ range: Range<Int>, wrap: @escaping (String) -> String, path: [String]) -> (path: String, literal: String)? {
            let (_, children) = JSONSyntax.children(of: body, in: range)
            if children.isEmpty {
                return path.isEmpty ? nil : (path.joined(separator: "."), String(decoding: body[range], as: UTF8.self))
            }
            for (index, child) in children.enumerated() where attempts > 0 {
                let key = child.rawKey.map { String(decoding: body[$0], as: UTF8.self) }
                let keep: (String) -> String = { text in wrap(key.map { "{" + $0 + ":" + text + "}" } ?? "[" + text + "]") }
                guard fails(keep(String(decoding: body[child.value], as: UTF8.self))) else { continue }
                let name = child.rawKey.map { JSONSyntax.keyName(body, $0) } ?? String(index + 1)
                let literal = String(decoding: body[child.value], as: UTF8.self)
                return narrow(child.value, wrap: keep, path: path + [name]) ?? ((path + [name]).joined(separator: "."), literal)
            }
            return nil
        }
        guard let start = body.firstIndex(of: UInt8(ascii: "{")), let end = body.lastIndex(of: UInt8(ascii: "}")) else { return nil }
        return narrow(start..<end + 1, wrap: { $0 }, path: [])
    }

    private static func shown(_ literal: String) -> String {
        literal.count > 64 ? String(literal.prefix(64)) + "…" : literal
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
