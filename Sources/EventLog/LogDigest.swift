import Crypto
import Foundation
import Postgres

/// The log's head (position, hash, time) signed with an Ed25519 key: what an auditor saves elsewhere
/// and later hands to `faceledger verify --digest` to prove that today's log still extends it.
///
/// The hash of the event at `position` covers every event up to it (the chain), so "the log still has
/// this hash at this position" means nothing up to there was changed, removed or reordered.
///
/// The signature covers the UTF-8 bytes of `"faceledger-digest-v1\n<position>\n<hash>\n<time>\n"`.
public struct LogDigest: Codable, Sendable, Hashable {
    public var position: Int64
    /// The head event's hash, lower-case hex.
    public var hash: String
    /// The head event's `recorded_at`, UTC, ISO 8601 with microseconds.
    public var time: String
    /// The Ed25519 public key, base64 of its 32 raw bytes.
    public var publicKey: String
    /// The Ed25519 signature of `signedMessage`, base64.
    public var signature: String

    enum CodingKeys: String, CodingKey {
        case position, hash, time
        case publicKey = "public_key"
        case signature
    }

    var signedMessage: Data {
        Data("faceledger-digest-v1\n\(position)\n\(hash)\n\(time)\n".utf8)
    }

    /// Signs the current head of the log; nil when the log is empty (there is nothing to vouch for).
    public static func ofHead(in session: PostgresSession, key: DigestKey) throws -> LogDigest? {
        let rows = try session.query(
            """
            SELECT position, hash, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            FROM events ORDER BY position DESC LIMIT 1
            """)
        guard let row = rows.first else { return nil }
        var digest = LogDigest(
            position: try row.decode(at: 0), hash: (try row.decode([UInt8].self, at: 1)).hexString,
            time: try row.decode(at: 2), publicKey: key.publicKey, signature: "")
        digest.signature = try key.privateKey.signature(for: digest.signedMessage).base64EncodedString()
        return digest
    }

    /// Whether `signature` is `publicKey`'s signature of this digest's position, hash and time.
    public var signatureIsValid: Bool {
        guard let keyBytes = Data(base64Encoded: publicKey), let signatureBytes = Data(base64Encoded: signature),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: keyBytes)
        else { return false }
        return key.isValidSignature(signatureBytes, for: signedMessage)
    }

    /// What `verify` must find in the log, nil when the hash is not 32 bytes of hex.
    public var expectation: LogVerification.Expectation? {
        guard let bytes = [UInt8](hexString: hash), bytes.count == 32 else { return nil }
        return LogVerification.Expectation(position: position, hash: bytes)
    }

    /// One JSON object with sorted keys, as `faceledger digest` prints it.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// The Ed25519 key that signs digests. Its file holds the base64 of the 32-byte private key, one line.
public struct DigestKey: Sendable {
    /// The raw 32 bytes (Crypto's key type is not Sendable; it is rebuilt where it is used).
    private let rawKey: Data
    var privateKey: Curve25519.Signing.PrivateKey { try! Curve25519.Signing.PrivateKey(rawRepresentation: rawKey) }

    /// Parses a key file's contents; nil when they are not a base64 32-byte key.
    public init?(fileContents: String) {
        guard let raw = Data(base64Encoded: fileContents.trimmingCharacters(in: .whitespacesAndNewlines)),
            (try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)) != nil
        else { return nil }
        rawKey = raw
    }

    /// A fresh key, as the contents of a new key file.
    public static func generateFileContents() -> String {
        Curve25519.Signing.PrivateKey().rawRepresentation.base64EncodedString() + "\n"
    }

    /// Base64 of the 32 raw bytes of the public key.
    public var publicKey: String { privateKey.publicKey.rawRepresentation.base64EncodedString() }
}
