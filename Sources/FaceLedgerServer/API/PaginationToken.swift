import Crypto
import Foundation
import LedgerDomain
import RekognitionWire

/// Opaque, signed pagination tokens: the last key of a page, bound by HMAC to the operation and the
/// collection. Keyset pagination survives concurrent writes (nothing listed twice, nothing that
/// existed throughout skipped); the signature turns tampering into InvalidPaginationTokenException.
struct PaginationTokens: Sendable {
    let secret: [UInt8]

    init(secret: [UInt8]) { self.secret = secret }

    func make(operation: String, collectionId: String, lastKey: String) -> String {
        let key = Data(lastKey.utf8)
        return Self.base64url(key) + "." + Self.base64url(mac(operation: operation, collectionId: collectionId, key: key))
    }

    func read(_ token: String, operation: String, collectionId: String) throws -> String {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let key = Self.unbase64url(String(parts[0])), let tag = Self.unbase64url(String(parts[1])),
            tag == mac(operation: operation, collectionId: collectionId, key: key),
            let lastKey = String(data: key, encoding: .utf8)
        else { throw LedgerError(.invalidPaginationToken, "Invalid pagination token") }
        return lastKey
    }

    private func mac(operation: String, collectionId: String, key: Data) -> Data {
        var message = Data("\(operation)\u{0}\(collectionId)\u{0}".utf8)
        message.append(key)
        return Data(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: secret)).prefix(16))
    }

    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func unbase64url(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}
