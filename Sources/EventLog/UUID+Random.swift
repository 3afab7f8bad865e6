import Foundation

extension UUID {
    /// A random (version 4) UUID drawn from the system's random generator.
    ///
    /// Foundation's `UUID()` opens `/dev/urandom` for every UUID on Linux: three or four opens per
    /// request (its id, a command's id, generated face ids) were measurable on the request path.
    public static func random() -> UUID {
        var generator = SystemRandomNumberGenerator()
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { buffer in
            buffer.storeBytes(of: generator.next() as UInt64, toByteOffset: 0, as: UInt64.self)
            buffer.storeBytes(of: generator.next() as UInt64, toByteOffset: 8, as: UInt64.self)
            buffer[6] = buffer[6] & 0x0F | 0x40  // version 4
            buffer[8] = buffer[8] & 0x3F | 0x80  // the RFC 4122 variant
        }
        return UUID(uuid: bytes)
    }
}
