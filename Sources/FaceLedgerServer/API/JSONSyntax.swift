import Foundation

/// Recognises JSON text (RFC 8259) without building values: tells a body that is not a JSON object
/// (SerializationException) from one whose members have the wrong types or out-of-range numbers
/// (InvalidParameterException, found when decoding). Numbers are checked for syntax only.
///
/// It also finds the first string the event log could not store: PostgreSQL's `jsonb` refuses the
/// escape `\u0000` (and an unpaired UTF-16 surrogate, which no Swift string can hold either), and a
/// refused append would fail every command batched with it. Checking here, on the bytes, covers every
/// member of every operation, keys included, before anything is decoded.
struct JSONSyntax {
    /// A string that cannot be stored, and where it is.
    struct Unstorable: Equatable {
        enum Problem: Equatable {
            case nul, unpairedSurrogate
        }
        /// Member names and 1-based list positions from the top, e.g. ["Faces", "2", "ExternalImageId"];
        /// for a key, the path of the object that holds it.
        var path: [String]
        var inKey: Bool
        var problem: Problem
    }

    /// What a JSON object body holds that decoding cannot see.
    struct Report {
        var unstorable: Unstorable?
    }

    /// A member of an object or an element of a list, by byte ranges of the body.
    struct Child {
        /// The key as written, quotes and escapes included (nil for a list element).
        var rawKey: Range<Int>?
        var value: Range<Int>
    }

    private enum Segment {
        case key(Range<Int>)
        case index(Int)
    }

    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0
    private var path: [Segment] = []
    private var unstorable: (path: [Segment], inKey: Bool, problem: Unstorable.Problem)?
    /// When set, the children of the container starting at this offset are collected.
    private var collectAt: Int?
    private var collected: [Child] = []

    /// The report when `bytes` is one JSON object, optionally surrounded by whitespace; nil otherwise.
    static func check(_ bytes: [UInt8]) -> Report? {
        var parser = JSONSyntax(bytes: bytes)
        guard parser.isWholeObject() else { return nil }
        return Report(
            unstorable: parser.unstorable.map { found in
                Unstorable(path: found.path.map { parser.name($0) }, inKey: found.inKey, problem: found.problem)
            })
    }

    /// True when `bytes` is one JSON object, optionally surrounded by whitespace.
    static func isObject(_ bytes: [UInt8]) -> Bool { check(bytes) != nil }

    /// The members (or elements) of the object (or list) at `range` of a valid body; none for a
    /// scalar. Whether they are keyed tells which.
    static func children(of bytes: [UInt8], in range: Range<Int>) -> (keyed: Bool, children: [Child]) {
        var parser = JSONSyntax(bytes: bytes)
        parser.index = range.lowerBound
        parser.collectAt = range.lowerBound
        let keyed = bytes[range.lowerBound] == UInt8(ascii: "{")
        guard parser.value() else { return (keyed, []) }
        return (keyed, parser.collected)
    }

    /// The text of a key as a member name (its escapes resolved).
    static func keyName(_ bytes: [UInt8], _ range: Range<Int>) -> String {
        JSONSyntax(bytes: bytes).name(.key(range))
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private mutating func isWholeObject() -> Bool {
        skipWhitespace()
        guard peek == UInt8(ascii: "{"), value() else { return false }
        skipWhitespace()
        return index == bytes.count
    }

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let c = peek, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { index += 1 }
    }

    private mutating func consume(_ literal: String) -> Bool {
        for byte in literal.utf8 {
            guard peek == byte else { return false }
            index += 1
        }
        return true
    }

    private mutating func value() -> Bool {
        skipWhitespace()
        guard let c = peek else { return false }
        switch c {
        case UInt8(ascii: "{"): return container(close: UInt8(ascii: "}"), keyed: true)
        case UInt8(ascii: "["): return container(close: UInt8(ascii: "]"), keyed: false)
        case UInt8(ascii: "\""): return string(isKey: false)
        case UInt8(ascii: "t"): return consume("true")
        case UInt8(ascii: "f"): return consume("false")
        case UInt8(ascii: "n"): return consume("null")
        default: return number()
        }
    }

    private mutating func container(close: UInt8, keyed: Bool) -> Bool {
        let collecting = collectAt == index
        depth += 1
        path.append(.index(0))
        defer {
            depth -= 1
            path.removeLast()
        }
        guard depth <= 512 else { return false }
        index += 1
        skipWhitespace()
        if peek == close {
            index += 1
            return true
        }
        var count = 0
        while true {
            var rawKey: Range<Int>?
            if keyed {
                skipWhitespace()
                let start = index
                guard peek == UInt8(ascii: "\""), string(isKey: true) else { return false }
                rawKey = start..<index
                path[path.count - 1] = .key(start..<index)
                skipWhitespace()
                guard consume(":") else { return false }
            } else {
                path[path.count - 1] = .index(count)
            }
            skipWhitespace()
            let start = index
            guard value() else { return false }
            if collecting { collected.append(Child(rawKey: rawKey, value: start..<index)) }
            count += 1
            skipWhitespace()
            if peek == close {
                index += 1
                return true
            }
            guard consume(",") else { return false }
        }
    }

    private mutating func string(isKey: Bool) -> Bool {
        index += 1
        var highSurrogatePending = false
        while let c = peek {
            index += 1
            if highSurrogatePending, c != UInt8(ascii: "\\") || peek != UInt8(ascii: "u") {
                found(.unpairedSurrogate, isKey: isKey)
                highSurrogatePending = false
            }
            switch c {
            case UInt8(ascii: "\""): return true
            case UInt8(ascii: "\\"):
                guard let escaped = peek else { return false }
                index += 1
                if escaped == UInt8(ascii: "u") {
                    var unit: UInt32 = 0
                    for _ in 0..<4 {
                        guard let h = peek, let digit = Self.hexDigit(h) else { return false }
                        unit = unit << 4 | digit
                        index += 1
                    }
                    // A high surrogate must be followed at once by a low one, and a low one preceded by a high one.
                    let afterHigh = highSurrogatePending
                    highSurrogatePending = (0xD800...0xDBFF).contains(unit)
                    if afterHigh != (0xDC00...0xDFFF).contains(unit) { found(.unpairedSurrogate, isKey: isKey) }
                    if unit == 0 { found(.nul, isKey: isKey) }
                } else if !"\"\\/bfnrt".utf8.contains(escaped) {
                    return false
                }
            case 0..<0x20: return false
            default: continue
            }
        }
        return false
    }

    private static func hexDigit(_ h: UInt8) -> UInt32? {
        switch h {
        case 0x30...0x39: UInt32(h - 0x30)
        case 0x41...0x46: UInt32(h - 0x41 + 10)
        case 0x61...0x66: UInt32(h - 0x61 + 10)
        default: nil
        }
    }

    /// Remembers the first unstorable string. The path holds only segments before it, so a name in
    /// it can never itself hold the character (the first occurrence is the one reported).
    private mutating func found(_ problem: Unstorable.Problem, isKey: Bool) {
        guard unstorable == nil else { return }
        unstorable = (isKey ? Array(path.dropLast()) : path, isKey, problem)
    }

    private mutating func number() -> Bool {
        _ = consume("-")
        guard digits() > 0 else { return false }
        if peek == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { return false }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { return false }
        }
        return true
    }

    private mutating func digits() -> Int {
        let start = index
        while let c = peek, c >= 0x30, c <= 0x39 { index += 1 }
        return index - start
    }

    /// A path segment as the messages show it: a member name, or a 1-based position in a list.
    private func name(_ segment: Segment) -> String {
        switch segment {
        case .index(let i): return String(i + 1)
        case .key(let range):
            // Only keys before the first unstorable string are named, so they decode.
            let text = String(decoding: bytes[range], as: UTF8.self)
            return (try? JSONDecoder().decode(String.self, from: Data(text.utf8))) ?? text
        }
    }
}
