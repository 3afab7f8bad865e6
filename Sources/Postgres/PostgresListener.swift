import Foundation
import ServiceLifecycle
import Synchronization

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
/// Nothing happens until `run()`: it starts the listener's thread (libpq's wait for notifications
/// blocks), and returns once that thread has closed its connection, after cancellation or graceful
/// shutdown. `events` finishes then.
///
/// Notifications are hints, never the source of truth: one sent while the listener was disconnected
/// is lost. So the stream also yields `.connected` after every (re)connection, and a consumer catches
/// up from its own checkpoint whenever it sees one.
public final class PostgresListener: Service, Sendable {
    public enum Event: Sendable, Hashable {
        /// The listener (re)connected and is listening; anything may have been missed before.
        case connected
        case notification(PostgresNotification)
    }

    public let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let conninfo: String
    private let channels: [String]
    private let retryDelay: Duration
    private let settings: SessionSettings
    private let stopped = Atomic(false)

    /// A listener on `channels` (lowercase identifiers such as `faceledger_events`), listening while `run()` runs.
    /// `settings` bound its connecting: `run()` ends only once a connection attempt under way has, so a
    /// service passes its `connect_timeout` and keepalives, or a shutdown could wait for the system's
    /// TCP timeout on an unreachable host.
    public init(conninfo: String, channels: [String], retryDelay: Duration = .milliseconds(250), settings: SessionSettings = .none) {
        precondition(channels.allSatisfy(Self.isValidChannel), "invalid channel name")
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(1024))
        self.conninfo = conninfo
        self.channels = channels
        self.retryDelay = retryDelay
        self.settings = settings
    }

    static func isValidChannel(_ channel: String) -> Bool {
        !channel.isEmpty && channel.count <= 63
            && channel.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
            && !("0"..."9").contains(channel.unicodeScalars.first!)
    }

    /// Listens on the listener's own thread until cancelled or shut down gracefully, then waits until
    /// that thread has closed its connection. Runs once: `events` has finished when it returns.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (joined: CheckedContinuation<Void, Never>) in
                    let thread = Thread { [self] in
                        loop()
                        joined.resume()
                    }
                    thread.name = "postgres-listener"
                    thread.start()
                }
            } onCancel: {
                stop()
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// Tells the thread to close its connection and end (within one 200 ms wait for notifications).
    private func stop() { stopped.store(true, ordering: .releasing) }

    private var isStopped: Bool { stopped.load(ordering: .acquiring) }

    private func loop() {
        let session = PostgresSession(conninfo: conninfo, reconnectTimeout: .zero, settings: settings)
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
                Thread.sleep(forTimeInterval: retryDelay / .seconds(1))
            }
        }
        session.close()
        continuation.finish()
    }
}
