import EmbeddedPostgres
import Foundation
import Postgres
import TestSupport
import Testing

@Suite("The embedded PostgreSQL")
struct EmbeddedPostgresTests {
    @Test("missing server programs are a clear error that names the package to install")
    func missingBinaries() throws {
        let empty = try TestDatabase.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: empty) }
        let error = #expect(throws: EmbeddedPostgresError.self) {
            try EmbeddedPostgres(dataDirectory: empty.path, binarySearchPaths: [empty.path])
        }
        #expect(error?.description.contains("initdb") == true)
        #expect(error?.description.contains("apt-get install postgresql") == true)
    }

    @Test("a too-long data directory is refused before anything starts")
    func socketPathTooLong() throws {
        let long = "/tmp/" + String(repeating: "d", count: 120)
        #expect(throws: EmbeddedPostgresError.self) { try EmbeddedPostgres(dataDirectory: long) }
    }

    @Test("the cluster keeps its data across stop and start, and start joins a running cluster")
    func keepsData() async throws {
        let directory = try TestDatabase.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try EmbeddedPostgres(dataDirectory: directory.path)
        defer { try? cluster.stop() }
        let conninfo = try await cluster.start()
        #expect(try cluster.isRunning())
        let first = try await PostgresConnection.connect(conninfo)
        try await first.query("CREATE TABLE notes (text text)")
        try await first.query("INSERT INTO notes VALUES ($1)", ["kept"])
        await first.close()

        #expect(try await cluster.start() == conninfo)  // already running: joined, not restarted
        try cluster.stop()
        #expect(try cluster.isRunning() == false)
        try await cluster.start()
        let second = try await PostgresConnection.connect(conninfo)
        let notes = try await second.query("SELECT text FROM notes").map { try $0.decode(String.self, at: 0) }
        #expect(notes == ["kept"])
        await second.close()
    }

    @Test("one server per data directory: a second claim is refused, naming the directory and the holder")
    func oneServerPerDataDirectory() throws {
        let directory = try TestDatabase.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try EmbeddedPostgres(dataDirectory: directory.path)
        let claim = try cluster.claimForServer()
        // flock locks belong to open file descriptions, so a second claim conflicts even in this process.
        let error = #expect(throws: EmbeddedPostgresError.self) { try cluster.claimForServer() }
        #expect(error?.description.contains(cluster.dataDirectory.path) == true)
        #expect(error?.description.contains("pid \(getpid())") == true)
        claim.release()
        // Free again once released. A child process that another test of this process is spawning
        // holds a copy of the descriptor from its fork to its exec (O_CLOEXEC closes it only then), so
        // the lock may outlive release() by that instant: the claim is tried until it succeeds.
        let deadline = ContinuousClock.now + .seconds(10)
        var again: FileLock?
        while again == nil && ContinuousClock.now < deadline {
            again = try? cluster.claimForServer()
            if again == nil { Thread.sleep(forTimeInterval: 0.01) }
        }
        #expect(again != nil)
        again?.release()
    }

    @Test("the cluster is stopped only when no other user holds it")
    func stopsOnlyWhenUnused() async throws {
        let directory = try TestDatabase.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try EmbeddedPostgres(dataDirectory: directory.path)
        defer { try? cluster.stop() }
        let mine = try await cluster.use()
        let other = try await cluster.use()
        try await cluster.start()
        #expect(cluster.postmasterIsAlive())
        #expect(try cluster.stopUnlessUsed(usage: mine) == false)
        #expect(try cluster.isRunning())
        other.release()
        let again = try await cluster.use()
        #expect(try cluster.stopUnlessUsed(usage: again) == true)
        #expect(try cluster.isRunning() == false)
        #expect(!cluster.postmasterIsAlive())
        again.release()
        mine.release()
    }
}
