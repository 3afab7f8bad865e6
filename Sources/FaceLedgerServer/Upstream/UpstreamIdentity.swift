import Foundation

/// AWS credentials for signing requests to the upstream.
public struct AWSCredentials: Sendable, Hashable {
    public var accessKeyId: String
    public var secretAccessKey: String
    /// A temporary credential's token, sent as `X-Amz-Security-Token`.
    public var sessionToken: String?

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// Who the ledger is to its upstream, and in which region it signs.
public struct UpstreamIdentity: Sendable, Hashable {
    public var credentials: AWSCredentials
    public var region: String
    /// Where the credentials came from, for the start-up log line (never the secret).
    public var source: String
}

/// The upstream's credentials or region could not be found.
public struct UpstreamConfigurationError: Error, CustomStringConvertible {
    public let description: String
}

extension UpstreamIdentity {
    /// Finds credentials and region as every AWS tool does:
    /// - credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, else from the
    ///   profile (`AWS_PROFILE`, else `default`) in the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`,
    ///   else `~/.aws/credentials`), else in the config file (`AWS_CONFIG_FILE`, else `~/.aws/config`);
    /// - the region from `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the profile's `region` in the
    ///   config file, else the endpoint's host when it names one (`rekognition.eu-west-1.amazonaws.com`).
    ///
    /// - Parameter readFile: the contents of a file, nil when it cannot be read (tests pass their own).
    public static func resolve(
        environment: [String: String], endpoint: URL, readFile: (String) -> String? = { try? String(contentsOfFile: $0, encoding: .utf8) }
    ) throws -> UpstreamIdentity {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let home = value("HOME") ?? NSHomeDirectory()
        let profile = value("AWS_PROFILE") ?? "default"
        let credentialsFile = value("AWS_SHARED_CREDENTIALS_FILE") ?? "\(home)/.aws/credentials"
        let configFile = value("AWS_CONFIG_FILE") ?? "\(home)/.aws/config"
        // The credentials file names sections by profile; the config file says `profile NAME`, except for `default`.
        let fromCredentialsFile = readFile(credentialsFile).map(INIFile.parse)?[profile]
        let fromConfigFile = readFile(configFile).map(INIFile.parse)?[profile == "default" ? "default" : "profile \(profile)"]

        let credentials: AWSCredentials
        let source: String
        if let keyId = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") {
            credentials = AWSCredentials(accessKeyId: keyId, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN"))
            source = "environment"
        } else if let found = fromCredentialsFile.flatMap(Self.credentials(in:)) {
            credentials = found
            source = "profile \(profile) in \(credentialsFile)"
        } else if let found = fromConfigFile.flatMap(Self.credentials(in:)) {
            credentials = found
            source = "profile \(profile) in \(configFile)"
        } else {
            throw UpstreamConfigurationError(
                description: """
                    no credentials for the upstream: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give profile \
                    '\(profile)' aws_access_key_id and aws_secret_access_key in \(credentialsFile) (AWS_PROFILE picks the profile)
                    """)
        }
        guard
            let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? fromConfigFile?["region"]
                ?? Self.region(ofHost: endpoint.host ?? "")
        else {
            throw UpstreamConfigurationError(
                description: """
                    no region for the upstream: set AWS_REGION (or AWS_DEFAULT_REGION), or `region` in profile '\(profile)' of \(configFile)
                    """)
        }
        return UpstreamIdentity(credentials: credentials, region: region, source: source)
    }

    private static func credentials(in section: [String: String]) -> AWSCredentials? {
        guard let keyId = section["aws_access_key_id"], let secret = section["aws_secret_access_key"] else { return nil }
        return AWSCredentials(accessKeyId: keyId, secretAccessKey: secret, sessionToken: section["aws_session_token"])
    }

    /// The region an AWS endpoint's host names: `rekognition.us-east-1.amazonaws.com` → `us-east-1`.
    static func region(ofHost host: String) -> String? {
        let labels = host.split(separator: ".")
        guard labels.count >= 4, labels.suffix(2).joined(separator: ".") == "amazonaws.com" else { return nil }
        return String(labels[labels.count - 3])
    }
}

/// The INI dialect of the AWS shared files: `[section]`, `key = value`, `#` or `;` comments.
enum INIFile {
    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                current = name
                sections[name, default: [:]] = sections[name] ?? [:]
            } else if let current, let equals = line.firstIndex(of: "=") {
                let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
                let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                sections[current]?[key] = value
            }
        }
        return sections
    }
}
