/// The best `limit` matches of a search, by score (highest first, ties by key), kept in memory
/// bounded by the limit however many candidates are offered: a search scans a collection of any size
/// a page at a time.
public struct TopMatches<Item> {
    public let limit: Int
    private var matches: [(item: Item, key: String, score: Double)] = []

    public init(limit: Int) {
        self.limit = max(0, limit)
    }

    public mutating func offer(_ item: Item, key: String, score: Double) {
        guard limit > 0 else { return }
        matches.append((item, key, score))
        // Trim in amortised O(1) per offer: only when twice the limit has piled up.
        if matches.count >= 2 * limit + 64 { trim() }
    }

    /// The matches, best first.
    public var best: [(item: Item, score: Double)] {
        var copy = self
        copy.trim()
        return copy.matches.map { ($0.item, $0.score) }
    }

    private mutating func trim() {
        matches.sort { ($0.score, $1.key) > ($1.score, $0.key) }
        if matches.count > limit { matches.removeLast(matches.count - limit) }
    }
}

extension TopMatches: Sendable where Item: Sendable {}
