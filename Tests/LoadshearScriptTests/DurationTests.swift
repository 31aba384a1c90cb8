import Testing

@testable import LoadshearScript

@Suite struct DurationTests {
    @Test(arguments: [
        ("250ms", Int64(250_000_000)), ("1s", 1_000_000_000), ("1.5s", 1_500_000_000), ("10us", 10_000),
        ("2m", 120_000_000_000), ("1h", 3_600_000_000_000), ("0ms", 0), ("0.25ms", 250_000), ("1.0001s", 1_000_100_000),
    ])
    func parses(_ text: String, _ ns: Int64) {
        #expect(DurationLiteral.parse(text) == .success(ns))
    }

    @Test func rejects() {
        #expect(DurationLiteral.parse("5") == .failure(.bareNumber))
        #expect(DurationLiteral.parse("5x") == .failure(.badUnit("x")))
        #expect(DurationLiteral.parse("5.s") == .failure(.malformed))
        #expect(DurationLiteral.parse("1.2.3s") == .failure(.malformed))
        #expect(DurationLiteral.parse("99999999999999999999h") == .failure(.tooLarge))
    }

    @Test func formats() {
        #expect(DurationLiteral.format(250_000_000) == "250ms")
        #expect(DurationLiteral.format(1_500_000_000) == "1.5s")
        #expect(DurationLiteral.format(90_000_000_000) == "1m30s")
        #expect(DurationLiteral.format(750_000) == "750us")
    }
}
