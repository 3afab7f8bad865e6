import Foundation

/// Tells at once when `serve` cannot listen where it is asked to, before the slow part of starting
/// (initialising and starting the embedded PostgreSQL) and with a message that says what to do.
enum PortProbe {
    /// Binds a socket to `host:port` the way the server will (SO_REUSEADDR, so a port whose old
    /// connections linger in TIME_WAIT counts as free) and closes it again. Port 0 always works.
    static func check(host: String, port: Int) throws {
        guard port != 0 else { return }
        guard (1...65_535).contains(port) else {
            throw RuntimeError("--port \(port) is not a port number: use 1-65535, or 0 for any free port")
        }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var addresses: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &addresses)
        guard resolved == 0, let address = addresses else {
            throw RuntimeError("cannot listen on \(host): \(String(cString: gai_strerror(resolved))); check --host")
        }
        defer { freeaddrinfo(addresses) }
        let socketDescriptor = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
        guard socketDescriptor >= 0 else { return }  // no socket to test with: the server itself will report it
        defer { close(socketDescriptor) }
        var on: Int32 = 1
        setsockopt(socketDescriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        guard bind(socketDescriptor, address.pointee.ai_addr, address.pointee.ai_addrlen) != 0 else { return }
        let failure = errno
        if failure == EADDRINUSE {
            throw RuntimeError(
                "port \(port) on \(host) is already in use (another faceledger serve?); choose another with --port, or --port 0 for any free port")
        }
        throw RuntimeError("cannot listen on \(host) port \(port): \(String(cString: strerror(failure))); choose another --port or --host")
    }
}
