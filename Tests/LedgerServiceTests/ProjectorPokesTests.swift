import Logging
import Testing

@testable import LedgerService

@Suite("Projector pokes")
struct ProjectorPokesTests {
    /// A projector run that ends (its connection was lost, its lease taken over) cancels the task
    /// consuming its pokes; the next run must still be woken by them. With one stream made once and
    /// shared by the runs, the cancelled consumer finished it for good and this fails.
    @Test("a poke reaches the run that follows a restart")
    func pokeAfterRestart() async {
        let pokes = Pokes()
        let first = pokes.subscribe()
        let consumer = Task { for await _ in first {} }
        consumer.cancel()
        await consumer.value

        let second = pokes.subscribe()
        pokes.poke()
        var iterator = second.makeAsyncIterator()
        #expect(await iterator.next() != nil)
    }

    /// A read waits for the projector at most its timeout, even when no projector runs at all.
    @Test("waiting for a fold ends at the timeout when nothing folds")
    func waitEndsAtTimeout() async {
        let projector = Projector(
            conninfo: "dbname=unused", logger: Logger(label: "test"),
            biometrics: Biometrics(masterKeys: .ephemeral()))
        let started = ContinuousClock.now
        await projector.waitUntilFolded(1, timeout: .milliseconds(100))
        // It returned at all (no projector will ever fold), and not before its timeout.
        #expect(ContinuousClock.now - started >= .milliseconds(100))
    }
}
