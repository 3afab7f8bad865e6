/// The match arithmetic of the embedded engine (docs/api.md, "Match confidence"), on plain arrays.
public enum Similarity {
    /// The vector scaled to unit length, or nil for a zero vector.
    public static func normalized(_ vector: [Float]) -> [Double]? {
        let norm = vector.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        guard norm > 0, norm.isFinite else { return nil }
        return vector.map { Double($0) / norm }
    }

    /// normalize(Σ normalize(eᵢ)): the vector a user is matched against; nil without faces.
    public static func userVector(_ embeddings: [[Float]]) -> [Double]? {
        userVectorSum(embeddings).flatMap(unit(ofSum:))
    }

    /// Σ normalize(eᵢ), in order; nil when no embedding is given. Faces without biometrics (forgotten,
    /// or indexed upstream) take no part, and the first embedding fixes the dimension.
    public static func userVectorSum(_ embeddings: [[Float]]) -> [Double]? {
        var sum: [Double]?
        for embedding in embeddings { add(embedding, to: &sum) }
        return sum
    }

    /// Adds normalize(embedding) to a running `userVectorSum`. Adding a user's faces one by one in the
    /// order they were associated gives exactly, bit for bit, the sum of all of them at once.
    public static func add(_ embedding: [Float], to sum: inout [Double]?) {
        guard !embedding.isEmpty else { return }
        if sum == nil { sum = [Double](repeating: 0, count: embedding.count) }
        guard let unit = normalized(embedding), unit.count == sum!.count else { return }
        for i in unit.indices { sum![i] += unit[i] }
    }

    /// The unit vector of a `userVectorSum`; nil for a zero sum.
    public static func unit(ofSum sum: [Double]) -> [Double]? {
        let norm = sum.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0 else { return nil }
        return sum.map { $0 / norm }
    }

    /// 100 × max(0, cos(embedding, unit)), where `unit` is already of length 1.
    public static func confidence(_ embedding: [Float], against unit: [Double]) -> Double {
        guard let face = normalized(embedding), face.count == unit.count else { return 0 }
        var dot = 0.0
        for i in face.indices { dot += face[i] * unit[i] }
        return 100 * max(0, min(1, dot))
    }

    /// 100 × max(0, cos(a, b)) for two embeddings.
    public static func similarity(_ a: [Float], _ b: [Float]) -> Double {
        guard let unit = normalized(b) else { return 0 }
        return confidence(a, against: unit)
    }
}
