import ArgumentParser
import EventLog
import Foundation
import Postgres

struct VerifyLog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Walk the event log's hash chain: exit 0 if and only if it is intact.",
        discussion: """
            Recomputes every event's hash from position 1 (a page at a time) and stops at the first event that \
            does not match: one altered (any column), or one whose predecessor was removed, inserted or reordered, \
            even by a superuser with the triggers disabled. With --digest FILE (from `faceledger digest`), also checks \
            the digest's signature and that the log still has the digest's hash at its position, i.e. still extends it. \
            Exit status: 0 intact, 2 the log fails verification (the first bad position is named), 1 it could not be \
            checked. Shows progress on a terminal; --json prints {"intact", "events", "head", "head_hash", \
            "first_bad_position", "reason", "seconds", "events_per_second", "digest"}.
            """)

    @Option(help: "A digest saved earlier by `faceledger digest`; the log must still extend it (env FACELEDGER_DIGEST).")
    var digest: String?
    @Option(
        name: .customLong("public-key"),
        help:
            "With --digest: the public key (base64, as `digest` prints it) the digest must be signed with; without it, the key inside the digest is trusted (env FACELEDGER_PUBLIC_KEY)."
    )
    var publicKey: String?
    @Flag(help: "Print one JSON object (env FACELEDGER_JSON=1).") var json = false
    @OptionGroup var database: DatabaseOptions

    /// The exit status of a log that fails verification, apart from 1 (could not check at all).
    static let failedStatus: Int32 = 2

    func run() async throws {
        let json = try resolveFlag(self.json, flag: "json")
        let digest = try (digest ?? environmentValue(forFlag: "digest")).map(Self.loadDigest)
        if let digest, let trusted = publicKey ?? environmentValue(forFlag: "public-key"), digest.publicKey != trusted {
            try finish(
                Outcome(failure: "the digest is signed with another key than the one given by --public-key", digest: digest),
                json: json)
        }
        if let digest, !digest.signatureIsValid {
            try finish(Outcome(failure: "the digest's signature is not valid for its public key", digest: digest), json: json)
        }
        let expectation = try digest.map { digest in
            guard let expectation = digest.expectation else { throw RuntimeError("the digest's hash is not 32 bytes of hex") }
            return expectation
        }
        let onTerminal = isatty(STDERR_FILENO) == 1 && !json
        let started = ContinuousClock.now
        let report = try await database.withConnection(logger: makeLogger()) { connection in
            try await connection.run { session in
                try LogVerification.run(in: session, expecting: expectation) { done, total in
                    if onTerminal { Self.show(done: done, total: total, since: started) }
                }
            }
        }
        if onTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
        try finish(Outcome(report: report, seconds: Self.seconds(since: started), digest: digest), json: json)
    }

    /// What `verify` found, printed as a line or as JSON.
    struct Outcome {
        var report = LogVerification.Report()
        var seconds = 0.0
        var failure: String?
        var digest: LogDigest?

        init(failure: String, digest: LogDigest) {
            self.failure = failure
            self.digest = digest
        }

        init(report: LogVerification.Report, seconds: Double, digest: LogDigest?) {
            self.report = report
            self.seconds = seconds
            self.failure = report.failure?.description
            self.digest = digest
        }

        var rate: Double { seconds > 0 ? Double(report.events) / seconds : 0 }
    }

    private func finish(_ outcome: Outcome, json: Bool) throws {
        if json {
            var object: [String: Any] = [
                "intact": outcome.failure == nil,
                "events": outcome.report.events,
                "head": outcome.report.head,
                "head_hash": outcome.report.headHash?.hexString ?? NSNull(),
                "first_bad_position": outcome.report.failure.map { $0.position as Any } ?? NSNull(),
                "reason": outcome.failure ?? NSNull(),
                "seconds": outcome.seconds,
                "events_per_second": outcome.rate.rounded(),
            ]
            if let digest = outcome.digest {
                object["digest"] = ["position": digest.position, "hash": digest.hash, "public_key": digest.publicKey]
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            printLine(String(decoding: data, as: UTF8.self))
        } else if let failure = outcome.failure {
            FileHandle.standardError.write(Data("verification FAILED at \(failure)\n".utf8))
        } else {
            printLine(
                String(
                    format: "intact: %lld events up to position %lld, head hash %@ (%.0f events/s)",
                    outcome.report.events, outcome.report.head, outcome.report.headHash?.hexString ?? "-", outcome.rate))
            if let digest = outcome.digest {
                printLine("the log extends the digest of position \(digest.position) (hash \(digest.hash), signed by \(digest.publicKey))")
            }
        }
        if outcome.failure != nil { throw ExitCode(Self.failedStatus) }
    }

    private static func loadDigest(_ path: String) throws -> LogDigest {
        guard let data = FileManager.default.contents(atPath: path) else { throw RuntimeError("cannot read the digest file \(path)") }
        do {
            return try JSONDecoder().decode(LogDigest.self, from: data)
        } catch {
            throw RuntimeError("\(path) is not a digest of `faceledger digest` (JSON with position, hash, time, public_key, signature)")
        }
    }

    private static func seconds(since start: ContinuousClock.Instant) -> Double {
        (ContinuousClock.now - start) / .seconds(1)
    }

    /// One progress line on stderr, rewritten in place.
    private static func show(done: Int64, total: Int64, since start: ContinuousClock.Instant) {
        let seconds = Self.seconds(since: start)
        let line = String(format: "\rverify: %lld / ~%lld events, %.0f events/s   ", done, total, seconds > 0 ? Double(done) / seconds : 0)
        FileHandle.standardError.write(Data(line.utf8))
    }
}
