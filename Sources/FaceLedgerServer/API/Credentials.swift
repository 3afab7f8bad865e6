import Foundation

/// What a key may do (docs/api.md, "Roles").
public enum Role: String, Sendable, Hashable {
    /// Everything.
    case admin
    /// Every Rekognition operation and ImportFaces.
    case writer
    /// Read operations and the audit operations only.
    case auditor
}

/// An access key: its secret, the principal recorded on every event it causes, its role, and an
/// optional request-rate limit.
public struct AccessKey: Sendable, Hashable {
    public var accessKeyId: String
    public var secretAccessKey: String
    public var principal: String
    public var role: Role
    /// Requests per second (and burst) allowed, nil for no limit.
    public var requestsPerSecond: Double?
}

/// The keys the server accepts, from the credentials file.
///
/// Format: one key per line, `ACCESS_KEY_ID SECRET_ACCESS_KEY PRINCIPAL ROLE [rate=N]`, `#` starts a
/// comment. The optional fifth field limits the key to N requests per second (burst N); beyond it
/// the server answers ThrottlingException, which the AWS SDKs retry with back-off.
public struct CredentialStore: Sendable {
    public let keys: [String: AccessKey]

    public init(keys: [AccessKey]) {
        self.keys = Dictionary(keys.map { ($0.accessKeyId, $0) }, uniquingKeysWith: { _, last in last })
    }

    public subscript(accessKeyId: String) -> AccessKey? { keys[accessKeyId] }

    public static func parse(_ text: String, source: String) throws -> CredentialStore {
        var keys: [AccessKey] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: \.isWhitespace).map(String.init)
            if fields.isEmpty { continue }
            func fail(_ reason: String) -> CredentialsFileError {
                CredentialsFileError(description: "\(source):\(index + 1): \(reason)")
            }
            guard fields.count == 4 || fields.count == 5 else {
                throw fail("expected ACCESS_KEY_ID SECRET_ACCESS_KEY PRINCIPAL ROLE [rate=N]")
            }
            guard let role = Role(rawValue: fields[3]) else { throw fail("role must be admin, writer or auditor") }
            var rate: Double?
            if fields.count == 5 {
                guard fields[4].hasPrefix("rate="), let value = Double(fields[4].dropFirst(5)), value > 0, value.isFinite else {
                    throw fail("the fifth field must be rate=N with N > 0 requests per second")
                }
                rate = value
            }
            keys.append(
                AccessKey(
                    accessKeyId: fields[0], secretAccessKey: fields[1], principal: fields[2], role: role,
                    requestsPerSecond: rate))
        }
        guard !keys.isEmpty else { throw CredentialsFileError(description: "\(source): no keys") }
        return CredentialStore(keys: keys)
    }

    public static func load(path: String) throws -> CredentialStore {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CredentialsFileError(description: "cannot read credentials file \(path)")
        }
        return try parse(text, source: path)
    }

    /// Loads `<data-dir>/credentials`, creating it with one random admin key first if it does not
    /// exist. Returns the store and the key when it was just created.
    ///
    /// The file is created whole and private (`PrivateFile`); if another process created it at the same
    /// moment, that file is the one loaded.
    public static func loadOrCreateDefault(dataDirectory: String) throws -> (CredentialStore, created: AccessKey?) {
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent("credentials").path
        if FileManager.default.fileExists(atPath: path) { return (try load(path: path), nil) }
        let key = AccessKey(
            accessKeyId: "FLAK" + randomString(16, alphabet: "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
            secretAccessKey: randomString(40, alphabet: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
            principal: "admin", role: .admin, requestsPerSecond: nil)
        let text = """
            # FaceLedger access keys: ACCESS_KEY_ID SECRET_ACCESS_KEY PRINCIPAL ROLE [rate=N]
            # ROLE is admin, writer or auditor; rate=N limits a key to N requests per second.
            \(key.accessKeyId) \(key.secretAccessKey) \(key.principal) \(key.role.rawValue)

            """
        try DataDirectory.prepare(dataDirectory)
        let created = try PrivateFile.createIfAbsent(path, contents: Array(text.utf8))
        return (try load(path: path), created ? key : nil)
    }

    private static func randomString(_ count: Int, alphabet: String) -> String {
        let characters = Array(alphabet)
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in characters[Int.random(in: 0..<characters.count, using: &generator)] })
    }
}

public struct CredentialsFileError: Error, CustomStringConvertible {
    public let description: String
}
