/// Recognises JSON text (RFC 8259) without building values: tells a body that is not a JSON object
/// (SerializationException) from one whose members have the wrong types or out-of-range numbers
/// (InvalidParameterException, found when decoding). Numbers are checked for syntax only.
struct JSONSyntax {
    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0

    /// True when `bytes` is one JSON object, optionally surrounded by whitespace.
    static func isObject(_ bytes: [UInt8]) -> Bool {
        var parser = JSONSyntax(bytes: bytes)
        parser.skipWhitespace()
        guard parser.peek == UInt8(ascii: "{"), parser.value() else { return false }
        parser.skipWhitespace()
        return parser.index == bytes.count
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

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
        case UInt8(ascii: "\""): return string()
        case UInt8(ascii: "t"): return consume("true")
        case UInt8(ascii: "f"): return consume("false")
        case UInt8(ascii: "n"): return consume("null")
        default: return number()
        }
    }

    private mutating func container(close: UInt8, keyed: Bool) -> Bool {
        depth += 1
        defer { depth -= 1 }
        guard depth <= 512 else { return false }
        index += 1
        skipWhitespace()
        if peek == close {
            index += 1
            return true
        }
        while true {
            if keyed {
                skipWhitespace()
                guard peek == UInt8(ascii: "\""), string() else { return false }
                skipWhitespace()
                guard consume(":") else { return false }
            }
            guard value() else { return false }
            skipWhitespace()
            if peek == close {
                index += 1
                return true
            }
            guard consume(",") else { return false }
        }
    }

    private mutating func string() -> Bool {
        index += 1
        while let c = peek {
            index += 1
            switch c {
            case UInt8(ascii: "\""): return true
            case UInt8(ascii: "\\"):
                guard let escaped = peek else { return false }
                index += 1
                if escaped == UInt8(ascii: "u") {
                    for _ in 0..<4 {
                        guard let h = peek, (h >= 0x30 && h <= 0x39) || (h | 0x20 >= 0x61 && h | 0x20 <= 0x66) else { return false }
                        index += 1
                    }
                } else if !"\"\\/bfnrt".utf8.contains(escaped) {
                    return false
                }
            case 0..<0x20: return false
            default: continue
            }
        }
        return false
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
}
