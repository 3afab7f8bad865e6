import LedgerDomain

extension CommandSubmission {
    /// Roughly what the submission holds in memory and will write: its embeddings' float32 bytes plus
    /// a fixed allowance for the rest. What the processor's byte budgets count.
    var payloadBytes: Int {
        var overhead = 1024
        if case .accept(let acceptance) = step { overhead += acceptance.body.count }
        guard case .success(.importFaces(_, let faces)) = command else { return overhead }
        return faces.reduce(overhead) { $0 + 256 + $1.embedding.count * MemoryLayout<Float>.size }
    }
}
