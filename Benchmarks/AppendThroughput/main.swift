import EventLog
import Foundation
import Postgres

// Usage: AppendThroughput CONNINFO CONCURRENCY SECONDS EVENTS_PER_APPEND
// Appends from CONCURRENCY writers for SECONDS, each append EVENTS_PER_APPEND events to the writer's
// own stream, and prints one JSON line: {"concurrency", "batch", "appends_per_s", "events_per_s"}.
let arguments = CommandLine.arguments
guard arguments.count == 5, let concurrency = Int(arguments[2]), let seconds = Double(arguments[3]),
    let batch = Int(arguments[4])
else {
    FileHandle.standardError.write(Data("usage: AppendThroughput CONNINFO CONCURRENCY SECONDS EVENTS_PER_APPEND\n".utf8))
    exit(2)
}
let conninfo = arguments[1]
let log = EventLog(pool: PostgresPool(conninfo: conninfo, maxConnections: concurrency))
let payload = #"{"faceId":"5f0f6c3e-0c1a-4d8e-9a1b-2c3d4e5f6a7b","userId":"bench-user","confidence":97.5}"#

let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
let started = ContinuousClock.now
let appends = try await withThrowingTaskGroup(of: Int.self) { group in
    for writer in 0..<concurrency {
        group.addTask {
            let metadata = EventMetadata(principal: "bench", requestId: UUID().uuidString, operation: "Benchmark")
            let events = (0..<batch).map { _ in
                NewEvent(stream: "bench-\(writer)", type: "FaceAssociated", data: payload, metadata: metadata)
            }
            var count = 0
            while ContinuousClock.now < deadline {
                try await log.append(events, to: "bench")
                count += 1
            }
            return count
        }
    }
    var total = 0
    for try await count in group { total += count }
    return total
}
let elapsed = (ContinuousClock.now - started)
let elapsedSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
let perSecond = Double(appends) / elapsedSeconds
print(
    #"{"concurrency": \#(concurrency), "batch": \#(batch), "appends_per_s": \#(Int(perSecond)), "events_per_s": \#(Int(perSecond * Double(batch)))}"#)
