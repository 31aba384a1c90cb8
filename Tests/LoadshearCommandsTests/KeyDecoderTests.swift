import Testing

@testable import LoadshearCommands

/// The dashboard's key bytes, as a terminal sends them.
@Suite struct KeyDecoderTests {
    func keys(_ bytes: [UInt8]) -> [KeyDecoder.Key] {
        var d = KeyDecoder()
        return bytes.compactMap { d.feed($0) }
    }

    @Test func arrowsSwitchAndQStops() {
        #expect(keys([0x1B, 0x5B, 0x43]) == [.switchMode])  // →
        #expect(keys([0x1B, 0x4F, 0x44]) == [.switchMode])  // ← in application mode
        #expect(keys([0x1B, 0x5B, 0x41]) == [])  // ↑: nothing
        #expect(keys(Array("xQ".utf8)) == [.stop])
    }

    /// The Esc key alone does not swallow the keys after it.
    @Test func aLoneEscapeKeepsTheNextKey() {
        #expect(keys([0x1B, UInt8(ascii: "q")]) == [.stop])
        #expect(keys([0x1B, 0x1B, 0x5B, 0x44]) == [.switchMode])
    }
}
