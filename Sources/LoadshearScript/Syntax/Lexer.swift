/// Turns script bytes into tokens. Never fails: bad input becomes a diagnostic and the
/// lexer carries on, so one stray character does not hide every later error.
package struct Lexer {
    private let bytes: [UInt8]
    /// Byte offset of the next byte to lex.
    private(set) var pos = 0
    /// A line break was skipped since the last token, so the next one starts a line; true at
    /// the start of the file.
    private var sawNewline = true

    /// A lexer at the start of `file`.
    package init(_ file: SourceFile) {
        self.bytes = file.bytes
    }

    /// Keyword spellings: a word spelled as one of these (exact case) lexes as `.keyword`,
    /// any other word as `.identifier`.
    private static let keywords: [String: Keyword] = Dictionary(
        uniqueKeysWithValues: Keyword.allCases.map { ($0.rawValue, $0) })

    /// Lexes the whole file (until the diagnostics are full); the last token is always
    /// `.endOfFile`. The parser pulls tokens one at a time instead.
    package static func tokenize(_ file: SourceFile, diagnostics: inout DiagnosticBag) -> [Token] {
        var lexer = Lexer(file)
        var tokens: [Token] = []
        while true {
            let t =
                diagnostics.isFull
                ? Token(kind: .endOfFile, range: SourceRange(start: lexer.pos, end: lexer.pos), startsLine: true)
                : lexer.next(&diagnostics)
            tokens.append(t)
            if t.kind == .endOfFile { return tokens }
        }
    }

    /// ASCII letters only: names and keywords are ASCII.
    private static func isLetter(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// Skips spaces, tabs, carriage returns, line breaks (noting them in `sawNewline`), `//`
    /// comments up to the end of their line, and a UTF-8 byte order mark at the very start.
    private mutating func skipTrivia() {
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\n") {
                sawNewline = true
                pos += 1
            } else if b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r") {
                pos += 1
            } else if b == UInt8(ascii: "/"), pos + 1 < bytes.count, bytes[pos + 1] == UInt8(ascii: "/") {
                while pos < bytes.count, bytes[pos] != UInt8(ascii: "\n") { pos += 1 }
            } else if b == 0xEF, pos + 2 < bytes.count, bytes[pos + 1] == 0xBB, bytes[pos + 2] == 0xBF, pos == 0 {
                pos += 3  // UTF-8 byte order mark
            } else {
                return
            }
        }
    }

    /// The next token: punctuation, a quoted string, a value (a digit, then letters, digits,
    /// `.` and `_`) or a word (a letter, then letters, digits and `_`). A character that
    /// starts none of these, or an unterminated string, is reported and skipped. At the end of
    /// the input it returns `.endOfFile`, on every call.
    package mutating func next(_ diagnostics: inout DiagnosticBag) -> Token {
        while true {
            skipTrivia()
            let start = pos
            let startsLine = sawNewline
            guard pos < bytes.count else {
                return Token(kind: .endOfFile, range: SourceRange(start: pos, end: pos), startsLine: true)
            }
            sawNewline = false
            let b = bytes[pos]
            func single(_ kind: Token.Kind) -> Token {
                pos += 1
                return Token(kind: kind, range: SourceRange(start: start, end: pos), startsLine: startsLine)
            }
            switch b {
            case UInt8(ascii: "="): return single(.equals)
            case UInt8(ascii: ":"): return single(.colon)
            case UInt8(ascii: ","): return single(.comma)
            case UInt8(ascii: "{"): return single(.leftBrace)
            case UInt8(ascii: "}"): return single(.rightBrace)
            case UInt8(ascii: "<"), UInt8(ascii: ">"):
                pos += 1
                if pos < bytes.count, bytes[pos] == UInt8(ascii: "=") { pos += 1 }
                let op = String(decoding: bytes[start..<pos], as: UTF8.self)
                return Token(kind: .comparison(op), range: SourceRange(start: start, end: pos), startsLine: startsLine)
            case UInt8(ascii: "\""):
                if let t = lexString(start: start, startsLine: startsLine, &diagnostics) { return t }
                continue
            default:
                break
            }
            if Self.isDigit(b) {
                pos += 1
                while pos < bytes.count {
                    let c = bytes[pos]
                    if c == UInt8(ascii: "%") {
                        pos += 1  // (ext) `0.1%` in EXPECT
                        break
                    }
                    // (ext) an address range: `127.0.0.10-127.0.0.40` (SOURCES).
                    if c == UInt8(ascii: "-"), pos + 1 < bytes.count, Self.isDigit(bytes[pos + 1]) {
                        pos += 1
                        continue
                    }
                    // (ext) a rate: `50/s`, `0.5/m` (a `//` comment still ends the value).
                    if c == UInt8(ascii: "/"), pos + 1 < bytes.count, Self.isLetter(bytes[pos + 1]) {
                        pos += 1
                        continue
                    }
                    guard Self.isLetter(c) || Self.isDigit(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
                    else { break }
                    pos += 1
                }
                let text = String(decoding: bytes[start..<pos], as: UTF8.self)
                return Token(kind: .value(text), range: SourceRange(start: start, end: pos), startsLine: startsLine)
            }
            if Self.isLetter(b) {
                pos += 1
                while pos < bytes.count {
                    let c = bytes[pos]
                    // (ext) dotted metric names in EXPECT: `response.p99`, `connect.failed`.
                    if c == UInt8(ascii: "."), pos + 1 < bytes.count, Self.isLetter(bytes[pos + 1]) {
                        pos += 1
                        continue
                    }
                    guard Self.isLetter(c) || Self.isDigit(c) || c == UInt8(ascii: "_") else { break }
                    pos += 1
                }
                let text = String(decoding: bytes[start..<pos], as: UTF8.self)
                let kind: Token.Kind = Self.keywords[text].map { .keyword($0) } ?? .identifier(text)
                return Token(kind: kind, range: SourceRange(start: start, end: pos), startsLine: startsLine)
            }
            // Anything else: report this character (all of its UTF-8 bytes), then go on.
            pos += 1
            while pos < bytes.count, bytes[pos] & 0xC0 == 0x80 { pos += 1 }  // rest of a UTF-8 scalar
            let shown = String(decoding: bytes[start..<pos], as: UTF8.self)
            let printable = shown.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F && $0 != "\u{FFFD}" }
            let what = printable ? "'\(shown)'" : "byte 0x" + String(bytes[start], radix: 16, uppercase: true)
            diagnostics.error(
                "unexpected character \(what); expected a keyword, a name, a number, a quoted string or one of = : , { } < >",
                at: SourceRange(start: start, end: pos))
        }
    }

    /// Lexes a quoted string. An unterminated quote (end of line or file before the closing
    /// quote) is reported at the opening quote, and the rest of the line is taken as the
    /// string: the parser then sees a value where one was meant, and reports nothing more
    /// about this line.
    private mutating func lexString(start: Int, startsLine: Bool, _ diagnostics: inout DiagnosticBag) -> Token? {
        pos += 1
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\\"), pos + 1 < bytes.count, bytes[pos + 1] != UInt8(ascii: "\n") {
                pos += 2
                continue
            }
            if c == UInt8(ascii: "\"") {
                pos += 1
                let raw = String(decoding: bytes[(start + 1)..<(pos - 1)], as: UTF8.self)
                return Token(
                    kind: .string(raw: raw), range: SourceRange(start: start, end: pos), startsLine: startsLine)
            }
            if c == UInt8(ascii: "\n") { break }
            pos += 1
        }
        diagnostics.error(
            "unterminated string; expected a closing '\"' on the same line",
            at: SourceRange(start: start, end: start + 1))
        diagnostics.markDamaged(at: start)
        var end = pos
        if end > start + 1, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }  // a CRLF line
        let raw = String(decoding: bytes[(start + 1)..<end], as: UTF8.self)
        return Token(kind: .string(raw: raw), range: SourceRange(start: start, end: end), startsLine: startsLine)
    }
}

extension Token {
    /// Decodes a string token's escapes: `\"` → `"`, `\\` → `\`, `\$` → `$`. With
    /// `protectDollar`, an escaped dollar comes back as U+E000 so environment expansion can
    /// tell it from a real `$` and restore it afterwards; a U+E000 or U+E001 written in the
    /// string comes back after a U+E001, which expansion drops (so it stays itself).
    package static func decode(raw: String, protectDollar: Bool = false) -> String {
        var out = ""
        var it = raw.unicodeScalars.makeIterator()
        while let c = it.next() {
            guard c == "\\" else {
                if protectDollar, c == "\u{E000}" || c == "\u{E001}" { out.unicodeScalars.append("\u{E001}") }
                out.unicodeScalars.append(c)
                continue
            }
            guard let n = it.next() else {
                out.unicodeScalars.append(c)
                break
            }
            switch n {
            case "\"": out.append("\"")
            case "\\": out.append("\\")
            case "$": out.unicodeScalars.append(protectDollar ? "\u{E000}" : "$")
            default:
                // Unknown escapes stay as written: scripts for the original have none.
                out.unicodeScalars.append(c)
                out.unicodeScalars.append(n)
            }
        }
        return out
    }
}
