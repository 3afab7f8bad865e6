import ArgumentParser

/// How `serve` protects its transport: TLS from PEM files, and plain HTTP only on loopback unless the
/// operator says otherwise.
struct TransportOptions: ParsableArguments {
    @Option(
        name: .customLong("tls-cert"),
        help: "PEM file with the server's certificate chain, leaf first: serve https:// (env FACELEDGER_TLS_CERT).")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "PEM file with the certificate's private key (env FACELEDGER_TLS_KEY).")
    var tlsKey: String?

    @Flag(
        name: .customLong("allow-plaintext"),
        help:
            "Serve plain HTTP on an address other than loopback: signatures stay safe, but bodies (embeddings, biometric data) and answers cross the network readable (env FACELEDGER_ALLOW_PLAINTEXT=1)."
    )
    var allowPlaintext = false

    /// The certificate and key files, or nil for plain HTTP — refused on an address other than loopback
    /// unless allowed, because requests carry biometric data and answers the ledger's contents.
    func resolved(host: String) throws -> (certificateChain: String, privateKey: String)? {
        let cert = tlsCert ?? environmentValue(forFlag: "tls-cert")
        let key = tlsKey ?? environmentValue(forFlag: "tls-key")
        switch (cert, key) {
        case let (cert?, key?):
            return (cert, key)
        case (nil, nil):
            let allowed = allowPlaintext || ["1", "true", "yes"].contains(environmentValue(forFlag: "allow-plaintext")?.lowercased() ?? "")
            guard allowed || Self.isLoopback(host) else {
                throw ValidationError(
                    """
                    refusing to serve plain HTTP on \(host): requests carry face embeddings and answers the ledger's \
                    contents, readable by anyone on the network. Give --tls-cert and --tls-key, listen on 127.0.0.1, \
                    or say --allow-plaintext (e.g. behind a TLS-terminating proxy on a private network)
                    """)
            }
            return nil
        default:
            throw ValidationError("--tls-cert and --tls-key go together")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
