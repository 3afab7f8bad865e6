import ArgumentParser
import AsyncHTTPClient
import FaceLedgerServer
import Foundation
import Histogram
import LedgerDomain
import NIOCore
import NIOHTTP1
import Synchronization

struct LoadTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Drive concurrent, signed calls (AssociateFaces, or a mix) against a server and report throughput and latency.",
        discussion: """
            Creates a collection of its own (loadtest-<random>) and runs --concurrency callers, each associating one \
            fresh face per AssociateFaces call to users of its own (100 faces each), for a one-second warm-up and then \
            --duration seconds. The faces are imported (FaceLedger.ImportFaces) before the clock starts: each caller's \
            first user's before the warm-up, and after it as many as the measured phase will take (in open loop one per \
            scheduled request, else one and a half times the caller's warm-up rate), so that no import loads the server \
            while it is measured; a run that outlasts them imports more on the way, counted in "refills". Each phase's \
            start is a line on standard error (loadtest: warming up, importing the faces of the measured phase, measuring, \
            measured). Requests are signed with SigV4 like any AWS SDK. Latencies go into an \
            HdrHistogram. With --json it prints one object: {"requests", "errors", "throughput", "p50_ms", "p99_ms"} \
            (throughput in successful requests per second of the measured phase), plus "collection_id" and \
            "warmup_requests" so the counts can be checked against the service's log. With --collections N the \
            callers are spread over N collections of their own (loadtest-<random>-<i>; caller c works in collection \
            c mod N), listed in "collection_ids". The collections are deleted at the end (their events stay in the log).

            --mix sets the operations and their weights, e.g. associate=8,disassociate=1,list-users=1,search-users=1 \
            (operations: associate, disassociate, list-users, list-faces, search-users, describe-collection; default \
            associate=1); a disassociation takes back a face the caller associated, which it associates again later. \
            "operations" in the JSON gives, by API name, each one's requests, errors, p50_ms and p99_ms. --rate R makes the run \
            open-loop: the callers together send R requests per second on a fixed schedule, staggered so that a \
            request is due every 1/R s (each caller every concurrency/R s), and a latency counts from when a request \
            was due, so a server that falls behind shows it in the percentiles instead of slowing the senders down. \
            A caller has one request in flight: a request due before the previous answer goes out when it comes \
            (late, and counted so), so give enough callers for the rate (concurrency ≥ R × latency). "requests" is \
            then exactly the schedule's count, round(duration × R / concurrency) per caller, and "throughput" \
            divides the successful ones by "measured_seconds", the time until the last answer (at least the \
            duration). Without --rate each caller sends its next request when the previous one is answered.
            """)

    @Option(help: "The server's URL, e.g. http://127.0.0.1:8080 (env FACELEDGER_ENDPOINT).") var endpoint: String?
    @Option(name: .customLong("access-key"), help: "Access key id (env FACELEDGER_ACCESS_KEY).") var accessKey: String?
    @Option(name: .customLong("secret-key"), help: "Secret access key (env FACELEDGER_SECRET_KEY).") var secretKey: String?
    @Option(help: "Concurrent callers (default 32; env FACELEDGER_CONCURRENCY).") var concurrency: Int?
    @Option(help: "Measured seconds, after a one-second warm-up (default 10; env FACELEDGER_DURATION).") var duration: Double?
    @Option(help: "Collections the callers are spread over (default 1; env FACELEDGER_COLLECTIONS).") var collections: Int?
    @Option(help: "Operations and their weights, e.g. associate=8,list-users=1 (default associate=1; env FACELEDGER_MIX).")
    var mix: String?
    @Option(help: "Open loop: requests per second from all callers together, on a fixed schedule (env FACELEDGER_RATE).")
    var rate: Double?
    @Flag(help: "Print one JSON object (env FACELEDGER_JSON=1).") var json = false

    func run() async throws {
        guard let endpoint = endpoint ?? environmentValue(forFlag: "endpoint"), let url = URL(string: endpoint),
            let accessKey = accessKey ?? environmentValue(forFlag: "access-key"),
            let secretKey = secretKey ?? environmentValue(forFlag: "secret-key")
        else { throw ValidationError("--endpoint, --access-key and --secret-key are required") }
        let callers =
            try concurrency ?? environmentValue(forFlag: "concurrency").map {
                guard let value = Int($0) else { throw ValidationError("FACELEDGER_CONCURRENCY is not a whole number") }
                return value
            } ?? 32
        let seconds =
            try duration ?? environmentValue(forFlag: "duration").map {
                guard let value = Double($0) else { throw ValidationError("FACELEDGER_DURATION is not a number") }
                return value
            } ?? 10
        let collectionCount =
            try collections ?? environmentValue(forFlag: "collections").map {
                guard let value = Int($0) else { throw ValidationError("FACELEDGER_COLLECTIONS is not a whole number") }
                return value
            } ?? 1
        guard callers > 0, seconds > 0, collectionCount > 0 else {
            throw ValidationError("--concurrency, --duration and --collections must be positive")
        }
        let operations = try LoadMix(parsing: mix ?? environmentValue(forFlag: "mix") ?? "associate=1")
        let requestsPerSecond =
            try rate
            ?? environmentValue(forFlag: "rate").map {
                guard let value = Double($0) else { throw ValidationError("FACELEDGER_RATE is not a number") }
                return value
            }
        if let requestsPerSecond, !(requestsPerSecond > 0 && requestsPerSecond.isFinite) {
            throw ValidationError("--rate must be a positive number of requests per second")
        }
        let json = try resolveFlag(self.json, flag: "json")

        let client = SignedClient(url: url, accessKey: accessKey, secretKey: secretKey, connections: callers)
        let prefix = "loadtest-" + UUID().uuidString.prefix(8).lowercased()
        let collectionIds = collectionCount == 1 ? [prefix] : (0..<collectionCount).map { "\(prefix)-\($0)" }
        var created: [String] = []
        let outcome = await Result {
            for collectionId in collectionIds {
                try await client.call("RekognitionService.CreateCollection", .object(["CollectionId": .string(collectionId)]))
                created.append(collectionId)
            }
            return try await LoadRun(
                client: client, collectionIds: collectionIds, callers: callers, seconds: seconds,
                mix: operations, rate: requestsPerSecond
            ).run()
        }
        // The collections were only the run's scaffolding: delete them, also after a failed run.
        var cleanup: Error?
        for collectionId in created {
            do {
                try await client.call("RekognitionService.DeleteCollection", .object(["CollectionId": .string(collectionId)]))
            } catch {
                cleanup = error
            }
        }
        let collectionId = collectionIds.count == 1 ? prefix : "\(prefix)-*"
        try await client.http.shutdown()
        let report = try outcome.get()
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: report.json, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(
                """
                collection \(collectionId): \(report.requests) requests in \(String(format: "%.1f", seconds)) s \
                with \(callers) callers\(requestsPerSecond.map { String(format: " at %.0f req/s", $0) } ?? ""), \(report.errors) errors
                throughput \(String(format: "%.0f", report.throughput)) req/s, p50 \(String(format: "%.2f", report.p50)) ms, \
                p99 \(String(format: "%.2f", report.p99)) ms\(report.refills > 0 ? ", \(report.refills) users set up while measured" : "")
                """)
            for (name, operation) in report.operations.sorted(by: { $0.key < $1.key }) where report.operations.count > 1 {
                print(
                    "  \(name): \(operation.requests) requests, \(operation.errors) errors, "
                        + String(format: "p50 %.2f ms, p99 %.2f ms", operation.p50, operation.p99))
            }
        }
        if let cleanup { throw RuntimeError("a collection of the run (\(collectionId)) could not be deleted: \(cleanup)") }
    }
}

/// Signed AWS JSON 1.1 calls over one HTTP client.
struct SignedClient: Sendable {
    let url: URL
    let accessKey: String
    let secretKey: String
    let http: HTTPClient

    init(url: URL, accessKey: String, secretKey: String, connections: Int) {
        self.url = url
        self.accessKey = accessKey
        self.secretKey = secretKey
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    struct CallError: Error, CustomStringConvertible {
        let description: String
    }

    /// POSTs a JSON body with `X-Amz-Target: target`; returns the JSON response or throws its error.
    @discardableResult
    func call(_ target: String, _ body: JSONValue) async throws -> [String: Any] {
        let bytes = try await post(target, body)
        return (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
    }

    /// POSTs a JSON body with `X-Amz-Target: target`; returns the response's bytes, unread, or throws its
    /// error. (The timed calls: the load generator's own CPU is kept small, so it hides little of the server's.)
    @discardableResult
    func post(_ target: String, _ body: JSONValue) async throws -> ByteBuffer {
        let payload = Array(body.data)
        var request = HTTPClientRequest(url: url.absoluteString.hasSuffix("/") ? url.absoluteString : url.absoluteString + "/")
        request.method = .POST
        let signed = SigV4Signer.sign(
            method: "POST", url: url, headers: [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target)],
            body: payload, accessKeyId: accessKey, secretAccessKey: secretKey, region: "us-east-1")
        for header in signed { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(ByteBuffer(bytes: payload))
        let response = try await http.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        guard response.status == .ok else {
            let json = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
            throw CallError(description: "\(target): \(response.status.code) \(json["__type"] ?? "") \(json["message"] ?? "")")
        }
        return bytes
    }
}

/// One load run: faces imported first, then timed callers, each drawing its operations from the mix.
struct LoadRun {
    let client: SignedClient
    let collectionIds: [String]
    let callers: Int
    let seconds: Double
    let mix: LoadMix
    /// Requests per second from all callers together (open loop); nil: each caller waits for its answers.
    let rate: Double?
    let warmUp = 1.0

    struct Report {
        var requests: Int
        var errors: Int
        var throughput: Double
        /// The measured phase: its planned duration, or in open loop until the last answer if that came later.
        var measuredSeconds: Double
        var p50: Double
        var p99: Double
        var warmupRequests: Int
        /// Users set up during the measured phase (their imports loaded the server but are not counted).
        var refills: Int
        var collectionIds: [String]
        var operations: [String: OperationReport]

        var json: [String: Any] {
            [
                "requests": requests, "errors": errors, "throughput": throughput, "measured_seconds": measuredSeconds,
                "p50_ms": p50, "p99_ms": p99,
                "warmup_requests": warmupRequests, "refills": refills, "collection_id": collectionIds[0], "collection_ids": collectionIds,
                "operations": operations.mapValues(\.json),
            ]
        }
    }

    struct OperationReport {
        var requests: Int
        var errors: Int
        var warmupRequests: Int
        var p50: Double
        var p99: Double

        var json: [String: Any] {
            ["requests": requests, "errors": errors, "warmup_requests": warmupRequests, "p50_ms": p50, "p99_ms": p99]
        }
    }

    /// Each caller works through users of its own, 100 fresh faces per user (the per-user limit), in
    /// phases all callers go through together: one user set up each, a warm-up, the users the measured
    /// phase will need set up before its clock starts (so their imports do not load the server while it
    /// is measured), then the measured phase.
    func run() async throws -> Report {
        var callerStates = try await eachCaller(Array(0..<callers)) { index in
            let collectionId = collectionIds[index % collectionIds.count]
            var caller = Caller(index: index, collectionId: collectionId, direction: (0..<8).map { _ in Double.random(in: -1...1) })
            caller.faces = try await prepareUser(&caller)
            return caller
        }
        Self.progress("warming up")
        let warmUpFrom = ContinuousClock.now
        callerStates = try await eachCaller(callerStates) { try await drive($0, from: warmUpFrom, for: warmUp, measured: false) }
        Self.progress("importing the faces of the measured phase")
        callerStates = try await eachCaller(callerStates) { try await prepareMeasuredPhase($0) }
        try await waitForImports(of: callerStates)
        Self.progress("measuring")
        let measuredFrom = ContinuousClock.now
        callerStates = try await eachCaller(callerStates) { try await drive($0, from: measuredFrom, for: seconds, measured: true) }
        Self.progress("measured")
        let results = callerStates.map(\.result)

        func percentile(_ histogram: Histogram<UInt64>, _ p: Double) -> Double { Double(histogram.valueAtPercentile(p)) / 1000 }
        var histogram = CallerResult.histogram()
        var operations: [String: OperationReport] = [:]
        for operation in Set(results.flatMap(\.byOperation.keys)) {
            let counts = results.compactMap { $0.byOperation[operation] }
            var latencies = CallerResult.histogram()
            for count in counts { latencies.add(count.latencies) }
            histogram.add(latencies)
            operations[operation] = OperationReport(
                requests: counts.reduce(0) { $0 + $1.requests }, errors: counts.reduce(0) { $0 + $1.errors },
                warmupRequests: counts.reduce(0) { $0 + $1.warmupRequests }, p50: percentile(latencies, 50), p99: percentile(latencies, 99))
        }
        let requests = operations.values.reduce(0) { $0 + $1.requests }
        let errors = operations.values.reduce(0) { $0 + $1.errors }
        // In open loop a server that falls behind answers the schedule late: the rate achieved counts until
        // the last answer.
        let lastAnswer = results.compactMap(\.lastAnswer).max()
        let measuredSeconds = rate == nil ? seconds : max(seconds, lastAnswer.map { ($0 - measuredFrom) / .seconds(1) } ?? seconds)
        return Report(
            requests: requests, errors: errors, throughput: Double(requests - errors) / measuredSeconds, measuredSeconds: measuredSeconds,
            p50: percentile(histogram, 50), p99: percentile(histogram, 99),
            warmupRequests: operations.values.reduce(0) { $0 + $1.warmupRequests }, refills: results.reduce(0) { $0 + $1.refills },
            collectionIds: collectionIds, operations: operations)
    }

    struct CallerResult: Sendable {
        struct Counts: Sendable {
            var requests = 0
            var errors = 0
            var warmupRequests = 0
            var latencies = CallerResult.histogram()
        }
        var byOperation: [String: Counts] = [:]
        /// When the last measured request was answered.
        var lastAnswer: ContinuousClock.Instant?
        /// Requests sent in the warm-up, answered or not.
        var warmUpCalls = 0
        /// Users set up during the measured phase, because those set up before it ran out.
        var refills = 0

        /// Latencies past a minute are recorded as a minute, so they still count in the percentiles.
        static let longestLatencyMicros: UInt64 = 60_000_000

        static func histogram() -> Histogram<UInt64> {
            Histogram<UInt64>(highestTrackableValue: longestLatencyMicros, numberOfSignificantValueDigits: .three)
        }
    }

    /// One caller, carried from phase to phase.
    struct Caller: Sendable {
        let index: Int
        let collectionId: String
        /// The direction its faces' embeddings scatter around.
        let direction: [Double]
        /// The user it is filling, with the faces it has yet to associate.
        var faces: (userId: String, faceIds: [String]) = ("", [])
        /// Users set up and not started on yet.
        var ready: [(userId: String, faceIds: [String])] = []
        /// The faces it associated with the user it is filling (a disassociation takes one back).
        var associated: [String] = []
        /// Users set up so far: the next is caller-<index>-<usersSetUp>.
        var usersSetUp = 0
        /// Faces imported so far.
        var imported = 0
        var result = CallerResult()
    }

    /// Runs `phase` for every caller at once; returns them in order.
    private func eachCaller<Input: Sendable>(
        _ inputs: [Input], _ phase: @escaping @Sendable (Input) async throws -> Caller
    ) async throws -> [Caller] {
        try await withThrowingTaskGroup(of: (Int, Caller).self) { group in
            for (position, input) in inputs.enumerated() {
                group.addTask { (position, try await phase(input)) }
            }
            var callers: [(Int, Caller)] = []
            for try await caller in group { callers.append(caller) }
            return callers.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// In open loop, a caller's requests are due every `interval` seconds: callers are staggered by 1/rate,
    /// so that together they send a request every 1/rate seconds rather than all at once.
    private var interval: Double? { rate.map { Double(callers) / $0 } }

    /// How many requests a phase of `seconds` holds for each caller in open loop.
    private func slots(_ seconds: Double, interval: Double) -> Int { Int((seconds / interval).rounded()) }

    /// Sets up the users the measured phase will fill, before its clock starts: in open loop a face for
    /// each of the caller's scheduled requests, else for one and a half times what it sent per second of
    /// warm-up. A run that outlasts them sets up more on the way (`refills`).
    private func prepareMeasuredPhase(_ caller: Caller) async throws -> Caller {
        var caller = caller
        let needed =
            interval.map { slots(seconds, interval: $0) }
            ?? Int((Double(caller.result.warmUpCalls) / warmUp * seconds * 1.5).rounded(.up))
        var available = caller.faces.faceIds.count + caller.ready.reduce(0) { $0 + $1.faceIds.count }
        while available < needed {
            let user = try await prepareUser(&caller)
            caller.ready.append(user)
            available += user.faceIds.count
        }
        return caller
    }

    /// Reports a phase's start on standard error, one line each (`scripts/benchmark-api` reads the
    /// server's CPU over the measured phase by them).
    private static func progress(_ phase: String) {
        FileHandle.standardError.write(Data("loadtest: \(phase)\n".utf8))
    }

    /// Waits until each collection's read model counts every face imported into it: the server folds the
    /// imports before the clock starts, not while it runs.
    private func waitForImports(of callers: [Caller]) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        for collectionId in collectionIds {
            let imported = callers.filter { $0.collectionId == collectionId }.reduce(0) { $0 + $1.imported }
            while true {
                let described = try await client.call(
                    "RekognitionService.DescribeCollection", .object(["CollectionId": .string(collectionId)]))
                if (described["FaceCount"] as? Int ?? 0) >= imported { break }
                guard ContinuousClock.now < deadline else {
                    throw SignedClient.CallError(description: "the server did not count the faces imported into \(collectionId) within 120 s")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// Sends one caller's requests for `seconds` from `from`: the warm-up, or the measured phase.
    private func drive(_ caller: Caller, from: ContinuousClock.Instant, for seconds: Double, measured: Bool) async throws -> Caller {
        var caller = caller
        let collectionId = caller.collectionId
        let deadline = from + .milliseconds(Int(seconds * 1000))
        // Open loop: this caller's requests are due in slots counted from `from`, offset by its place.
        let offset = rate.map { Double(caller.index) / $0 } ?? 0
        let slots = interval.map { self.slots(seconds, interval: $0) } ?? 0
        var slot = 0
        while true {
            var operation = mix.draw()
            if operation == .disassociate && caller.associated.isEmpty { operation = .associate }
            if operation == .associate && caller.faces.faceIds.isEmpty {
                // This user holds its hundred faces: on to the next, set up now if none is ready.
                if caller.ready.isEmpty {
                    caller.ready.append(try await prepareUser(&caller))
                    if measured { caller.result.refills += 1 }
                }
                caller.faces = caller.ready.removeFirst()
                caller.associated = []
            }
            var due: ContinuousClock.Instant?
            if let interval {
                guard slot < slots else { break }
                due = from + .nanoseconds(Int64(((Double(slot) * interval + offset) * 1e9).rounded()))
                slot += 1
                if ContinuousClock.now < due! { try await Task.sleep(until: due!, clock: .continuous) }
            } else if ContinuousClock.now >= deadline {
                break
            }
            let target: String
            let body: JSONValue
            let userId = caller.faces.userId
            switch operation {
            case .associate:
                let faceId = caller.faces.faceIds.removeFirst()
                caller.associated.append(faceId)
                (target, body) = (
                    "AssociateFaces",
                    .object([
                        "CollectionId": .string(collectionId), "UserId": .string(userId), "FaceIds": .array([.string(faceId)]),
                        "ClientRequestToken": .string(UUID.random().uuidString),
                    ])
                )
            case .disassociate:
                let faceId = caller.associated.removeLast()
                caller.faces.faceIds.append(faceId)
                (target, body) = (
                    "DisassociateFaces",
                    .object([
                        "CollectionId": .string(collectionId), "UserId": .string(userId), "FaceIds": .array([.string(faceId)]),
                        "ClientRequestToken": .string(UUID.random().uuidString),
                    ])
                )
            case .listUsers:
                (target, body) = ("ListUsers", .object(["CollectionId": .string(collectionId), "MaxResults": .integer(100)]))
            case .listFaces:
                (target, body) = (
                    "ListFaces", .object(["CollectionId": .string(collectionId), "UserId": .string(userId), "MaxResults": .integer(100)])
                )
            case .searchUsers:
                (target, body) = (
                    "SearchUsers",
                    .object(["CollectionId": .string(collectionId), "FaceId": .string(caller.faces.faceIds.first ?? caller.associated[0])])
                )
            case .describeCollection:
                (target, body) = ("DescribeCollection", .object(["CollectionId": .string(collectionId)]))
            }
            // Open loop: the latency counts from when the request was due, waiting included.
            let started = due ?? ContinuousClock.now
            var failed = false
            do {
                try await client.post("RekognitionService." + target, body)
            } catch {
                failed = true
            }
            let elapsed = ContinuousClock.now - started
            var counts = caller.result.byOperation[target, default: CallerResult.Counts()]
            defer { caller.result.byOperation[target] = counts }
            guard measured else {
                caller.result.warmUpCalls += 1
                if !failed { counts.warmupRequests += 1 }
                continue
            }
            counts.requests += 1
            if failed { counts.errors += 1 }
            let micros = UInt64(max(1, elapsed / .microseconds(1)))
            _ = counts.latencies.record(min(micros, CallerResult.longestLatencyMicros))
            caller.result.lastAnswer = ContinuousClock.now
        }
        return caller
    }

    /// Sets up the caller's next user: created, and a hundred faces imported for it (not yet associated).
    private func prepareUser(_ caller: inout Caller) async throws -> (userId: String, faceIds: [String]) {
        let userId = "caller-\(caller.index)-\(caller.usersSetUp)"
        caller.usersSetUp += 1
        let collectionId = caller.collectionId
        try await client.call("RekognitionService.CreateUser", .object(["CollectionId": .string(collectionId), "UserId": .string(userId)]))
        let faces = (0..<100).map { _ in
            JSONValue.object(["Embedding": .array(caller.direction.map { .number($0 + Double.random(in: -0.01...0.01)) })])
        }
        let imported = try await client.call("FaceLedger.ImportFaces", .object(["CollectionId": .string(collectionId), "Faces": .array(faces)]))
        let ids = (imported["FaceRecords"] as? [[String: Any]] ?? []).compactMap { ($0["Face"] as? [String: Any])?["FaceId"] as? String }
        caller.imported += ids.count
        return (userId, ids)
    }
}

extension Result where Failure == any Error {
    /// The outcome of an async throwing body.
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}

/// The operations of a load run and their weights (`--mix`).
struct LoadMix: Sendable {
    enum Operation: String, CaseIterable, Sendable {
        case associate, disassociate
        case listUsers = "list-users"
        case listFaces = "list-faces"
        case searchUsers = "search-users"
        case describeCollection = "describe-collection"
    }

    /// Each operation with the running total of the weights up to it.
    let cumulative: [(operation: Operation, upTo: Int)]

    init(parsing text: String) throws {
        var total = 0
        var cumulative: [(Operation, Int)] = []
        for part in text.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let operation = Operation(rawValue: pair[0]), pair.count == 2, let weight = Int(pair[1]), weight >= 0 else {
                throw ValidationError(
                    "--mix: '\(part)' is not OPERATION=WEIGHT with an operation among "
                        + Operation.allCases.map(\.rawValue).joined(separator: ", "))
            }
            total += weight
            if weight > 0 { cumulative.append((operation, total)) }
        }
        guard total > 0 else { throw ValidationError("--mix: the weights add up to nothing") }
        self.cumulative = cumulative
    }

    func draw() -> Operation {
        let pick = Int.random(in: 0..<cumulative.last!.upTo)
        return cumulative.first { pick < $0.upTo }!.operation
    }
}
