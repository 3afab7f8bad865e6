import NIOSSL

/// The server's TLS configuration from PEM files: the certificate chain (leaf first) and its key.
func serverTLS(certificateChain: String, privateKey: String) throws -> TLSConfiguration {
    do {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateChain).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: privateKey, format: .pem)
        return TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
    } catch {
        throw ServerConfigurationError(description: "cannot load the TLS certificate \(certificateChain) or key \(privateKey): \(error)")
    }
}
