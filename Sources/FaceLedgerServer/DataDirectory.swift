import Foundation

/// FaceLedger's data directory (`--data-dir`): the default credentials file, the lock files and the
/// embedded PostgreSQL live in it.
public enum DataDirectory {
    /// Creates the directory if it is missing, private to its owner from the start: mkdir(2) with mode
    /// 0700, never a wider mode narrowed afterwards. Run as root, the embedded cluster runs as the
    /// `postgres` system user and must reach its folder inside, so the directory's group becomes that
    /// user's group with search permission only (0710): still nobody else can list or read it.
    /// An existing directory is left as it is: its mode is its owner's choice.
    public static func prepare(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw DataDirectoryError(description: "--data-dir \(path) is not a directory") }
            return
        }
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else {
            throw DataDirectoryError(description: "cannot create the data directory \(path): \(String(cString: strerror(errno)))")
        }
        if geteuid() == 0, let postgres = getpwnam("postgres") {
            guard chown(path, uid_t.max, postgres.pointee.pw_gid) == 0, chmod(path, 0o710) == 0 else {
                throw DataDirectoryError(description: "cannot give the postgres user access to \(path): \(String(cString: strerror(errno)))")
            }
        }
    }
}

public struct DataDirectoryError: Error, CustomStringConvertible {
    public let description: String
}
