import Foundation

/// Paths of PostgreSQL's server programs.
struct ServerBinaries: Sendable {
    let initdb: String
    let pgCtl: String

    /// `PATH`, then Debian's and other common install folders, newest major version first.
    static func defaultSearchPaths() -> [String] {
        var paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        let debian = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: debian)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        paths += versions.map { "\(debian)/\($0)/bin" }
        paths += ["/usr/local/pgsql/bin", "/opt/homebrew/bin", "/usr/local/bin"]
        return paths
    }

    static func find(in searchPaths: [String]) throws -> ServerBinaries {
        for directory in searchPaths {
            let initdb = directory + "/initdb"
            let pgCtl = directory + "/pg_ctl"
            if FileManager.default.isExecutableFile(atPath: initdb), FileManager.default.isExecutableFile(atPath: pgCtl) {
                return ServerBinaries(initdb: initdb, pgCtl: pgCtl)
            }
        }
        throw EmbeddedPostgresError(
            "the PostgreSQL server programs (initdb, pg_ctl) were not found. Install them "
                + "(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) "
                + "or pass --database-url to use an existing PostgreSQL")
    }
}

/// Runs the server programs as the right user: the current one, or `postgres` when we are root.
struct CommandRunner: Sendable {
    /// The system user the cluster runs as, when it is not the current user.
    let serverUser: String?
    private let runuser: String?

    static func forCurrentUser() throws -> CommandRunner {
        guard geteuid() == 0 else { return CommandRunner(serverUser: nil, runuser: nil) }
        guard getpwnam("postgres") != nil else {
            throw EmbeddedPostgresError(
                "running as root, the embedded PostgreSQL needs a 'postgres' system user (apt-get install postgresql creates it)")
        }
        guard
            let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
                .first(where: FileManager.default.isExecutableFile(atPath:))
        else { throw EmbeddedPostgresError("running as root, the embedded PostgreSQL needs runuser (util-linux)") }
        return CommandRunner(serverUser: "postgres", runuser: runuser)
    }

    /// Gives the cluster directory to the server user (when running as root).
    func takeOwnership(of path: String) throws {
        guard let serverUser, let user = getpwnam(serverUser) else { return }
        guard chown(path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
            throw EmbeddedPostgresError("could not give \(path) to the \(serverUser) user")
        }
    }

    /// Runs a program and fails with `failure` and its output when it exits non-zero.
    func run(_ program: String, _ arguments: [String], failure: String) throws {
        let (status, output) = try execute(program, arguments)
        guard status == 0 else {
            throw EmbeddedPostgresError("\(failure): \(output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Runs a program and returns its exit status.
    func status(_ program: String, _ arguments: [String]) throws -> Int32 {
        try execute(program, arguments).status
    }

    /// Spawns the program and waits for it with `waitpid`. (Foundation's `Process` can miss the
    /// exit of a child whose grandchild, the daemonised postmaster, lives on.)
    private func execute(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let argv: [String]
        if let runuser, let serverUser {
            argv = [runuser, "-u", serverUser, "--", program] + arguments
        } else {
            argv = [program] + arguments
        }
        // Output goes to a file, not a pipe: the postmaster that pg_ctl starts inherits the descriptors
        // and would keep a pipe open for as long as it runs.
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("faceledger-pg-\(UUID().uuidString).log").path
        defer { unlink(outputPath) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, &cArguments, environ)
        guard spawned == 0 else {
            throw EmbeddedPostgresError("could not run \(argv[0]): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED / WEXITSTATUS, which Swift does not import as macros.
        let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exitStatus, output)
    }
}
