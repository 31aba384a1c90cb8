import Testing

@testable import LoadshearScript

@Suite struct LexerTests {
    func kinds(_ s: String) -> ([Token.Kind], DiagnosticBag) {
        var d = DiagnosticBag()
        let t = Lexer.tokenize(SourceFile(path: "x", text: s), diagnostics: &d)
        return (t.map(\.kind), d)
    }

    @Test func tokensOfAllKinds() {
        let (k, d) = kinds("SETTINGS s { PORT = 5 } 0:100 1.5s 127.0.0.1 \"a b\" , foo")
        #expect(!d.hasErrors)
        #expect(
            k == [
                .keyword(.SETTINGS), .identifier("s"), .leftBrace, .keyword(.PORT), .equals, .value("5"), .rightBrace,
                .value("0"), .colon, .value("100"), .value("1.5s"), .value("127.0.0.1"), .string(raw: "a b"), .comma,
                .identifier("foo"), .endOfFile,
            ])
    }

    @Test func commentsAreIgnoredButNotInsideStrings() {
        let (k, _) = kinds("PORT // SEND CONNECT\n\"a//b\" // x")
        #expect(k == [.keyword(.PORT), .string(raw: "a//b"), .endOfFile])
    }

    @Test func escapesDecode() {
        #expect(Token.decode(raw: #"a\"b\\c\$d"#) == #"a"b\c$d"#)
        #expect(Token.decode(raw: #"\$HOME"#, protectDollar: true) == "\u{E000}HOME")
        #expect(Token.decode(raw: #"C:\temp"#) == #"C:\temp"#)
    }

    @Test func unterminatedStringIsAnErrorAtTheOpeningQuote() {
        var d = DiagnosticBag()
        let file = SourceFile(path: "x", text: "PACKETS { p : \"abc\n}")
        _ = Lexer.tokenize(file, diagnostics: &d)
        #expect(d.diagnostics.count == 1)
        #expect(file.location(of: d.diagnostics[0].range.start) == SourceLocation(line: 1, column: 15))
    }

    @Test func unexpectedCharactersAreReportedAndSkipped() {
        let (k, d) = kinds("PORT # = 5 é")
        #expect(d.errorCount == 2)
        #expect(k == [.keyword(.PORT), .equals, .value("5"), .endOfFile])
    }

    @Test func columnsCountScalarsNotBytes() {
        let f = SourceFile(path: "x", text: "\"é\" X")
        #expect(f.location(of: 5) == SourceLocation(line: 1, column: 5))
    }
}
