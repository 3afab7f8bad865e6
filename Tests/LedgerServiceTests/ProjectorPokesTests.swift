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
}
