import Foundation
import Synchronization

/// An advisory lock on a file, held with flock(2) until `release()` or the end of the process.
///
/// The kernel drops a flock when its last descriptor closes, so a process killed with SIGKILL leaves
/// no stale lock behind. The descriptor is opened close-on-exec: a child (pg_ctl, the postmaster it
/// starts) must not inherit it, or the lock would outlive the process that took it.
public final class FileLock: Sendable {
    public let path: String
    private let descriptor: Int32
    private let released = Mutex(false)

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Takes the lock without waiting; nil when another process holds it in a conflicting mode.
    public static func tryAcquire(_ path: String, exclusive: Bool) throws -> FileLock? {
        let descriptor = try open(path)
        if flock(descriptor, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 {
            return FileLock(path: path, descriptor: descriptor)
        }
        let failure = errno
        close(descriptor)
        guard failure == EWOULDBLOCK else { throw EmbeddedPostgresError("cannot lock \(path): \(String(cString: strerror(failure)))") }
        return nil
    }

    /// Takes the lock, waiting (on a thread of its own, not Swift's pool) while another process holds it.
    public static func acquire(_ path: String, exclusive: Bool) async throws -> FileLock {
        let descriptor = try open(path)
        let failure: Int32 = await withCheckedContinuation { continuation in
            Thread {
                var result: Int32 = 0
                while flock(descriptor, exclusive ? LOCK_EX : LOCK_SH) != 0 {
                    if errno != EINTR {
                        result = errno
                        break
                    }
                }
                continuation.resume(returning: result)
            }.start()
        }
        guard failure == 0 else {
            close(descriptor)
            throw EmbeddedPostgresError("cannot lock \(path): \(String(cString: strerror(failure)))")
        }
        return FileLock(path: path, descriptor: descriptor)
    }

    /// Turns a shared lock into an exclusive one without waiting; false when another process holds it too.
    /// (flock may drop the shared lock on the way: only call this when about to let go anyway.)
    public func tryUpgrade() -> Bool {
        flock(descriptor, LOCK_EX | LOCK_NB) == 0
    }

    /// Replaces the file's contents (who holds the lock, for the message of a process refused).
    public func record(_ text: String) {
        guard ftruncate(descriptor, 0) == 0 else { return }
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    public func release() {
        released.withLock { isReleased in
            guard !isReleased else { return }
            isReleased = true
            close(descriptor)  // closing the last descriptor drops the lock
        }
    }

    deinit { release() }

    private static func open(_ path: String) throws -> Int32 {
        let descriptor = Foundation.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw EmbeddedPostgresError("cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        return descriptor
    }
}
