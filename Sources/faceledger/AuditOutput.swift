import ArgumentParser
import Foundation
import LedgerDomain
import LedgerService

/// Writes audit entries as they come: a table, one JSON document, or JSON lines. Nothing is kept.
struct AuditOutput {
    enum Format {
        case table, json, jsonl

        init(json: Bool, jsonl: Bool) throws {
            switch (json, jsonl) {
            case (true, true): throw ValidationError("give --json or --jsonl, not both")
            case (true, false): self = .json
            case (false, true): self = .jsonl
            case (false, false): self = .table
            }
        }
    }

    /// Entries read per query: bounds the memory an export of any size takes.
    static let pageSize = 1000

    let format: Format
    private var written = 0

    init(format: Format) { self.format = format }

    mutating func write(_ entry: AuditEntry) {
        switch format {
        case .jsonl:
            printLine(Self.text(entry.json))
        case .json:
            // The document is opened with the first entry and closed by `finish`, so it streams.
            printLine((written == 0 ? "{\"Entries\": [\n" : ",\n") + Self.text(entry.json), terminator: "")
        case .table:
            if written == 0 { printLine(Self.row(Self.header)) }
            printLine(Self.row(Self.cells(entry)))
        }
        written += 1
    }

    mutating func finish() {
        switch format {
        case .jsonl: break
        case .json: printLine(written == 0 ? "{\"Entries\": []}" : "\n]}")
        case .table: if written == 0 { printLine("no entries") }
        }
    }

    static func text(_ json: JSONValue) -> String { String(decoding: json.data, as: UTF8.self) }

    static let header = ["POSITION", "TIME (UTC)", "PRINCIPAL", "OPERATION", "OUTCOME", "USER", "FACES", "REQUEST", "DETAIL"]
    private static let widths = [9, 26, 16, 18, 30, 16, 36, 36]

    static func cells(_ entry: AuditEntry) -> [String] {
        var detail: [String] = []
        if let confidence = entry.confidence { detail.append("confidence \(String(format: "%.2f", confidence))") }
        if let owner = entry.ownerUserId { detail.append("owner \(owner)") }
        if let reasons = entry.reasons { detail.append(reasons.joined(separator: ",")) }
        if let message = entry.message { detail.append(message) }
        if let replayOf = entry.replayOf { detail.append("replay of \(replayOf)") }
        if let token = entry.clientRequestToken { detail.append("token \(token)") }
        if let address = entry.sourceAddress { detail.append("from \(address)") }
        if entry.collectionId.isEmpty == false { detail.insert("collection \(entry.collectionId)", at: 0) }
        return [
            String(entry.position), timeFormatter.string(from: entry.time), entry.principal, entry.operation, entry.outcome,
            entry.userId ?? "-", entry.faceId ?? entry.faceIds?.joined(separator: ",") ?? "-", entry.requestId,
            detail.joined(separator: "; "),
        ]
    }

    /// Fixed widths, so the table can be printed before all of it is read.
    static func row(_ cells: [String]) -> String {
        zip(cells, widths + [0]).map { cell, width in
            cell.count >= width ? cell : cell + String(repeating: " ", count: width - cell.count)
        }.joined(separator: " ")
    }

    nonisolated(unsafe) static let timeFormatter: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter
    }()
}

/// Writes `text` to standard output at once, without a newline unless asked.
func printLine(_ text: String, terminator: String) {
    FileHandle.standardOutput.write(Data((text + terminator).utf8))
}
