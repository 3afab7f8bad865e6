import Foundation

/// Files only their owner may read (the credentials file, the digest key), created whole and private
/// from the start.
public enum PrivateFile {
    /// Creates `path` with `contents` and mode 0600 unless it exists; returns true when this call
    /// created it. The bytes go into a fresh temporary file (O_CREAT|O_EXCL, mode 0600 — the umask can
    /// only narrow it — written in full and flushed to disk) that is then linked into place, so the file
    /// never exists with a wider mode nor half written. link(2) fails if the file appeared meanwhile
    /// (another process starting at the same moment): then that one, complete, stays.
    public static func createIfAbsent(_ path: String, contents: [UInt8]) throws -> Bool {
        if FileManager.default.fileExists(atPath: path) { return false }
        var generator = SystemRandomNumberGenerator()
        let temporary = path + ".\(getpid()).\(UInt64.random(in: 0...UInt64.max, using: &generator)).new"
        try writeNew(temporary, contents: contents)
        defer { unlink(temporary) }
        guard link(temporary, path) == 0 else {
            guard errno == EEXIST else { throw failure("cannot create \(path)") }
            return false
        }
        return true
    }

    private static func writeNew(_ path: String, contents: [UInt8]) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure("cannot create \(path)") }
        defer { close(descriptor) }
        var written = 0
        while written < contents.count {
            let count = contents[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw failure("cannot write \(path)") }
            written += count
        }
        guard fsync(descriptor) == 0 else { throw failure("cannot write \(path)") }
    }

    private static func failure(_ what: String) -> PrivateFileError {
        PrivateFileError(description: "\(what): \(String(cString: strerror(errno)))")
    }
}

public struct PrivateFileError: Error, CustomStringConvertible {
    public let description: String
}
