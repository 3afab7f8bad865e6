import ServiceLifecycle

/// Runs the command processor's worker as a service. On graceful shutdown it finishes what is
/// queued (the HTTP server, stopped first, has no requests left in flight), then returns.
public struct CommandProcessorService: Service {
    let processor: CommandProcessor

    public init(processor: CommandProcessor) { self.processor = processor }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await processor.run()
        } onGracefulShutdown: {
            processor.finish()
        }
    }
}
