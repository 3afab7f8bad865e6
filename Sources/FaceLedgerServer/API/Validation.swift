import LedgerDomain
import RekognitionWire

/// Checks request members against the Rekognition model's constraints, which botocore does not
/// enforce (it checks only `required` and `min`). Messages follow AWS's wording.
struct Validator {
    private(set) var problems: [String] = []

    static let collectionId = StringRule(min: 1, max: 255, allowed: .identifier, pattern: "[a-zA-Z0-9_.\\-]+")
    static let userId = StringRule(min: 1, max: 128, allowed: .identifierWithColon, pattern: "[a-zA-Z0-9_.\\-:]+")
    static let externalImageId = StringRule(min: 1, max: 255, allowed: .identifierWithColon, pattern: "[a-zA-Z0-9_.\\-:]+")
    static let clientRequestToken = StringRule(min: 1, max: 64, allowed: .token, pattern: "^[a-zA-Z0-9-_]+$")
    static let paginationToken = StringRule(min: 0, max: 255, allowed: nil, pattern: nil)

    struct StringRule {
        let min: Int
        let max: Int
        let allowed: Characters?
        let pattern: String?
    }

    enum Characters {
        case identifier, identifierWithColon, token

        func contains(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "_", "-": return true
            case ".": return self != .token
            case ":": return self == .identifierWithColon
            default: return false
            }
        }
    }

    mutating func fail(_ problem: String) { problems.append(problem) }

    mutating func fail(_ member: String, _ value: String, _ constraint: String) {
        problems.append("Value '\(Self.shown(value))' at '\(member)' failed to satisfy constraint: \(constraint)")
    }

    /// A value as a message shows it: at most 64 characters.
    static func shown(_ value: String) -> String { value.count > 64 ? String(value.prefix(64)) + "…" : value }

    mutating func check(_ value: String?, _ member: String, _ rule: StringRule, required: Bool = false) {
        guard let value else {
            if required { problems.append("Value null at '\(member)' failed to satisfy constraint: Member must not be null") }
            return
        }
        let length = value.unicodeScalars.count
        if length < rule.min { fail(member, value, "Member must have length greater than or equal to \(rule.min)") }
        if length > rule.max { fail(member, value, "Member must have length less than or equal to \(rule.max)") }
        if let allowed = rule.allowed, let pattern = rule.pattern, !value.unicodeScalars.allSatisfy(allowed.contains) {
            fail(member, value, "Member must satisfy regular expression pattern: \(pattern)")
        }
    }

    mutating func checkFaceId(_ value: String?, _ member: String, required: Bool = false) {
        guard let value else {
            if required { problems.append("Value null at '\(member)' failed to satisfy constraint: Member must not be null") }
            return
        }
        if !Self.isFaceId(value) {
            fail(member, value, "Member must satisfy regular expression pattern: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
        }
    }

    static func isFaceId(_ value: String) -> Bool {
        let scalars = Array(value.unicodeScalars)
        guard scalars.count == 36 else { return false }
        for (i, c) in scalars.enumerated() {
            if [8, 13, 18, 23].contains(i) {
                if c != "-" { return false }
            } else if !(("0"..."9").contains(c) || ("a"..."f").contains(c)) {
                return false
            }
        }
        return true
    }

    mutating func checkFaceIds(_ values: [String]?, _ member: String, min: Int, max: Int, required: Bool = false) {
        guard let values else {
            if required { problems.append("Value null at '\(member)' failed to satisfy constraint: Member must not be null") }
            return
        }
        if values.count < min {
            problems.append("Value at '\(member)' failed to satisfy constraint: Member must have length greater than or equal to \(min)")
        }
        if values.count > max {
            problems.append("Value at '\(member)' failed to satisfy constraint: Member must have length less than or equal to \(max)")
        }
        for (index, value) in values.enumerated().prefix(max) { checkFaceId(value, "\(member).\(index + 1).member") }
    }

    static let tagKeyPattern = "^(?!aws:)[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*$"
    static let tagValuePattern = "^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$"

    /// CreateCollection's TagMap: at most 200 tags; keys of 1 to 128 characters, values of up to 256,
    /// both letters, separators, digits and `_.:/=+-@`; no key starting with `aws:` (reserved by AWS).
    mutating func checkTags(_ tags: [String: String]?, _ member: String) {
        guard let tags else { return }
        if tags.count > 200 {
            problems.append("Value at '\(member)' failed to satisfy constraint: Member must have length less than or equal to 200")
        }
        for (key, value) in tags.sorted(by: { $0.key < $1.key }).prefix(200) {
            var keyProblems: [String] = []
            let keyLength = key.unicodeScalars.count
            if keyLength < 1 { keyProblems.append("Member must have length greater than or equal to 1") }
            if keyLength > 128 { keyProblems.append("Member must have length less than or equal to 128") }
            if key.hasPrefix("aws:") || !key.unicodeScalars.allSatisfy(Self.isTagCharacter) {
                keyProblems.append("Member must satisfy regular expression pattern: \(Self.tagKeyPattern)")
            }
            if !keyProblems.isEmpty {
                fail(member, key, "Map keys must satisfy constraint: [\(keyProblems.joined(separator: ", "))]")
            }
            var valueProblems: [String] = []
            if value.unicodeScalars.count > 256 { valueProblems.append("Member must have length less than or equal to 256") }
            if !value.unicodeScalars.allSatisfy(Self.isTagCharacter) {
                valueProblems.append("Member must satisfy regular expression pattern: \(Self.tagValuePattern)")
            }
            if !valueProblems.isEmpty {
                fail("\(member).\(Self.shown(key))", value, "Map values must satisfy constraint: [\(valueProblems.joined(separator: ", "))]")
            }
        }
    }

    /// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`: a letter, a separator, a number, or one of `_.:/=+-@`.
    static func isTagCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .spaceSeparator, .lineSeparator, .paragraphSeparator,
            .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return "_.:/=+-@".unicodeScalars.contains(scalar)
        }
    }

    mutating func checkRange(_ value: Int?, _ member: String, _ range: ClosedRange<Int>) {
        guard let value, !range.contains(value) else { return }
        problems.append(
            "Value '\(value)' at '\(member)' failed to satisfy constraint: Member must have value between \(range.lowerBound) and \(range.upperBound)"
        )
    }

    mutating func checkPercent(_ value: Double?, _ member: String) {
        guard let value else { return }
        if !value.isFinite || value < 0 || value > 100 {
            problems.append("Value '\(value)' at '\(member)' failed to satisfy constraint: Member must have value between 0 and 100")
        }
    }

    /// Throws InvalidParameterException listing every problem, AWS style.
    func finish() throws {
        guard !problems.isEmpty else { return }
        let count = problems.count
        throw LedgerError.invalidParameter(
            "\(count) validation error\(count == 1 ? "" : "s") detected: " + problems.joined(separator: "; "))
    }
}

/// One member's check, as a request's member table declares it (`OperationRequest.members`).
struct MemberRule<Request> {
    let check: (Request, inout Validator) -> Void

    static func string(
        _ value: KeyPath<Request, String?>, _ member: String, _ rule: Validator.StringRule,
        required: Bool = false
    ) -> Self {
        Self { request, v in v.check(request[keyPath: value], member, rule, required: required) }
    }

    static func faceId(_ value: KeyPath<Request, String?>, _ member: String, required: Bool = false) -> Self {
        Self { request, v in v.checkFaceId(request[keyPath: value], member, required: required) }
    }

    static func faceIds(
        _ value: KeyPath<Request, [String]?>, _ member: String, count: ClosedRange<Int>,
        required: Bool = false
    ) -> Self {
        Self { request, v in v.checkFaceIds(request[keyPath: value], member, min: count.lowerBound, max: count.upperBound, required: required) }
    }

    static func range(_ value: KeyPath<Request, Int?>, _ member: String, _ range: ClosedRange<Int>) -> Self {
        Self { request, v in v.checkRange(request[keyPath: value], member, range) }
    }

    static func percent(_ value: KeyPath<Request, Double?>, _ member: String) -> Self {
        Self { request, v in v.checkPercent(request[keyPath: value], member) }
    }

    static func tags(_ value: KeyPath<Request, [String: String]?>, _ member: String) -> Self {
        Self { request, v in v.checkTags(request[keyPath: value], member) }
    }

    /// A check the kinds above cannot say: several members together, or a nested structure.
    static func custom(_ check: @escaping (Request, inout Validator) -> Void) -> Self { Self(check: check) }
}
