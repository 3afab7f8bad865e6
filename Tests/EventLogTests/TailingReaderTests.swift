import EventLog
import Foundation
import Postgres
import Synchronization
import TestSupport
import Testing

@Suite("The event log under concurrent writers")
struct TailingReaderTests {
    @Test("16 writers with randomly delayed commits: a tailing reader sees every event exactly once, in order")
    func tailingReaderSkipsNothing() async throws {
        try await TestDatabase.withFresh { conninfo in
            let writers = 16
            let appendsPerWriter = 20
            let writerPool = PostgresPool(conninfo: conninfo, maxConnections: writers)
            let log = EventLog(pool: PostgresPool(conninfo: conninfo, maxConnections: 1))
            let writing = RunningCount(writers)

            let writerTasks = Task {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for writer in 0..<writers {
                        group.addTask {
                            defer { writing.decrement() }
                            var count = 0
                            for append in 0..<appendsPerWriter {
                                let batch = (0..<Int.random(in: 1...3)).map { _ in
                                    NewEvent(
                                        stream: "writer-\(writer)", type: "Wrote", data: #"{"append":\#(append)}"#,
                                        metadata: EventMetadata(principal: "w\(writer)", requestId: UUID().uuidString, operation: "Test"))
                                }
                                let delay = Double.random(in: 0...0.008)
                                try await writerPool.run { session in
                                    try session.transaction {
                                        _ = try EventLog.append(batch, to: "c\(writer % 4)", in: session)
                                        // The positions are drawn; now commit late, by a random amount.
                                        try session.query("SELECT pg_sleep($1)", [.float64(delay)])
                                    }
                                }
                                count += batch.count
                            }
                            return count
                        }
                    }
                    return try await group.reduce(0, +)
                }
            }

            var seen: [RecordedEvent] = []
            var checkpoint: Int64 = 0
            while true {
                let finishedBeforeRead = writing.isZero
                let page = try await log.read(after: checkpoint, limit: 7)
                seen += page
                checkpoint = page.last?.position ?? checkpoint
                if page.isEmpty {
                    if finishedBeforeRead { break }
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
            let total = try await writerTasks.value

            let committed = try await writerPool.query("SELECT position FROM events ORDER BY position")
                .map { try $0.decode(Int64.self, at: 0) }
            #expect(seen.count == total)
            #expect(seen.map(\.position) == committed)
            #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.position < $1.position })
            #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.recordedAt <= $1.recordedAt })
            // Each writer's stream has gap-free versions.
            for writer in 0..<writers {
                let versions = seen.filter { $0.stream == "writer-\(writer)" && $0.collectionId == "c\(writer % 4)" }.map(\.version)
                #expect(versions == Array(1...versions.count))
            }
            await writerPool.close()
        }
    }
}

/// How many writers are still running.
final class RunningCount: Sendable {
    private let count: Mutex<Int>
    init(_ count: Int) { self.count = Mutex(count) }
    func decrement() { count.withLock { $0 -= 1 } }
    var isZero: Bool { count.withLock { $0 == 0 } }
}
