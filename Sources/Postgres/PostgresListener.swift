import Foundation
import NIOConcurrencyHelpers

/// A notification sent with `NOTIFY` / `pg_notify`.
public struct PostgresNotification: Sendable, Hashable {
    public let channel: String
    public let payload: String

    public init(channel: String, payload: String) {
        self.channel = channel
        self.payload = payload
    }
}

/// Listens on channels over a dedicated connection and thread, reconnecting when the database goes away.
///
/// Notifications are hints, never the source of truth: one sent while the listener was disconnected
/// is lost. So the stream also yields `.connected` after every (re)connection, and a consumer catches
/// up from its own checkpoint whenever it sees one.
public final class PostgresListener: Sendable {
    public enum Event: Sendable, Hashable {
        /// The listener (re)connected and is listening; anything may have been missed before.
        case connected
        case notification(PostgresNotification)
    }

    public let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let stopped = NIOLockedValueBox(false)
    private let finished = NIOLockedValueBox<[CheckedContinuation<Void, Never>]?>([])

    /// Starts listening on `channels` (lowercase identifiers such as `faceledger_events`).
    public init(conninfo: String, channels: [String], retryDelay: Duration = .milliseconds(250)) {
        precondition(channels.allSatisfy(Self.isValidChannel), "invalid channel name")
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(1024))
        let thread = Thread { [self] in
            self.loop(conninfo: conninfo, channels: channels, retryDelay: retryDelay)
        }
        thread.name = "postgres-listener"
        thread.start()
    }

    static func isValidChannel(_ channel: String) -> Bool {
        !channel.isEmpty && channel.count <= 63
            && channel.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
            && !("0"..."9").contains(channel.unicodeScalars.first!)
    }

    /// Stops listening and waits until the listener's thread has closed its connection.
    public func stop() async {
        stopped.withLockedValue { $0 = true }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let alreadyFinished = finished.withLockedValue { waiters -> Bool in
                guard waiters != nil else { return true }
                waiters!.append(done)
                return false
            }
            if alreadyFinished { done.resume() }
        }
    }

    private var isStopped: Bool { stopped.withLockedValue { $0 } }

    private func loop(conninfo: String, channels: [String], retryDelay: Duration) {
        let session = PostgresSession(conninfo: conninfo, reconnectTimeout: .zero)
        var connected = false
        while !isStopped {
            do {
                if !connected {
                    try session.ensureConnected()
                    for channel in channels { try session.listen(channel) }
                    connected = true
                    continuation.yield(.connected)
                }
                for notification in try session.receiveNotifications(timeoutMilliseconds: 200) {
                    continuation.yield(.notification(notification))
                }
            } catch {
                connected = false
                session.close()
                Thread.sleep(forTimeInterval: retryDelay.seconds)
            }
        }
        session.close()
        continuation.finish()
        let waiters = finished.withLockedValue { waiters in
            defer { waiters = nil }
            return waiters ?? []
        }
        waiters.forEach { $0.resume() }
    }
}
