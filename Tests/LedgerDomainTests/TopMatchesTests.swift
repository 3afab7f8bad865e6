import Testing

@testable import LedgerDomain

@Suite("A search's best matches, in bounded memory")
struct TopMatchesTests {
    @Test("the best `limit` of any number offered, by score then key, as sorting them all would give")
    func bestOfMany() {
        var generator = SystemRandomNumberGenerator()
        let offered = (0..<10_000).map { n in (key: "f\(n)", score: Double(Int.random(in: 0..<500, using: &generator)) / 5) }
        for limit in [0, 1, 7, 100, 4096, 20_000] {
            var top = TopMatches<Int>(limit: limit)
            for (index, candidate) in offered.enumerated() { top.offer(index, key: candidate.key, score: candidate.score) }
            let expected = offered.sorted { ($0.score, $1.key) > ($1.score, $0.key) }.prefix(limit).map(\.key)
            #expect(top.best.map { offered[$0.item].key } == Array(expected), "limit \(limit)")
            #expect(top.best.map(\.score) == Array(offered.sorted { ($0.score, $1.key) > ($1.score, $0.key) }.prefix(limit).map(\.score)))
        }
    }
}
