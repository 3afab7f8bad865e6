import LedgerDomain

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
        let shown = value.count > 64 ? String(value.prefix(64)) + "…" : value
        problems.append("Value '\(shown)' at '\(member)' failed to satisfy constraint: \(constraint)")
    }

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
        if values.count < min { problems.append("Value at '\(member)' failed to satisfy constraint: Member must have length greater than or equal to \(min)") }
        if values.count > max { problems.append("Value at '\(member)' failed to satisfy constraint: Member must have length less than or equal to \(max)") }
        for (index, value) in values.enumerated().prefix(max) { checkFaceId(value, "\(member).\(index + 1).member") }
    }

    mutating func checkRange(_ value: Int?, _ member: String, _ range: ClosedRange<Int>) {
        guard let value, !range.contains(value) else { return }
        problems.append("Value '\(value)' at '\(member)' failed to satisfy constraint: Member must have value between \(range.lowerBound) and \(range.upperBound)")
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
