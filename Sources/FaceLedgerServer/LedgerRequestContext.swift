import Hummingbird
import NIOCore

/// The request context: Hummingbird's core plus the client's address (recorded on events).
public struct LedgerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
