/// The dashboard's keys from the terminal's bytes: ← or → (`Esc [ D`, `Esc [ C`, or the
/// `Esc O` forms) switch totals and increments, `q` stops. A lone Esc (the Esc key itself)
/// is dropped without taking the next key with it.
struct KeyDecoder {
    enum Key: Equatable {
        case switchMode
        case stop
    }

    /// The escape sequence read so far (empty: none under way).
    private var escape: [UInt8] = []

    mutating func feed(_ byte: UInt8) -> Key? {
        if !escape.isEmpty {
            if escape.count == 1, byte != UInt8(ascii: "["), byte != UInt8(ascii: "O") {
                escape = []  // a lone Esc: this byte is a key of its own
            } else {
                escape.append(byte)
                guard escape.count == 3 else { return nil }
                let arrow = escape[2] == UInt8(ascii: "C") || escape[2] == UInt8(ascii: "D")
                escape = []
                return arrow ? .switchMode : nil
            }
        }
        if byte == 0x1B {
            escape = [byte]
            return nil
        }
        return byte == UInt8(ascii: "q") || byte == UInt8(ascii: "Q") ? .stop : nil
    }
}
