/// (ext) Sizes in scripts: a whole number of bytes, optionally with a unit — `KiB`, `MiB`,
/// `GiB` (powers of 1024) or `kB`, `MB`, `GB` (powers of 1000).
package enum SizeLiteral {
    /// Each unit's spelling and size in bytes; `KB` is taken as `kB`.
    package static let units: [(String, Int)] = [
        ("B", 1), ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("kB", 1_000), ("KB", 1_000),
        ("MB", 1_000_000), ("GB", 1_000_000_000),
    ]
    /// The units as diagnostics list them.
    package static let unitList = "B, KiB, MiB, GiB, kB, MB or GB"
    /// One WebAssembly page, and the most a 32-bit module can address.
    package static let wasmPage = 65_536
    /// 4 GiB: the most a 32-bit module can address.
    package static let wasmMaxMemory = 1 << 32
    /// `HANDLER_MEMORY` when the script does not set it.
    package static let defaultHandlerMemory = 64 << 20

    /// Why text is not a size.
    package enum ParseError: Error, Equatable {
        /// A unit that is not one of ``units``.
        case badUnit(String)
        /// No leading digit, or a fraction (`1.5MiB`): sizes are whole numbers.
        case malformed
        /// More bytes than an `Int` holds.
        case tooLarge
    }

    /// Parses a size such as `64MiB`, or `4096` (bytes, without a unit), into bytes.
    package static func parse(_ text: String) -> Result<Int, ParseError> {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return .failure(.malformed) }
        let unit = String(text.dropFirst(digits.count))
        guard let scale = unit.isEmpty ? 1 : units.first(where: { $0.0 == unit })?.1 else {
            return .failure(unit.contains(where: { $0.isNumber || $0 == "." }) ? .malformed : .badUnit(unit))
        }
        guard let n = Int(digits) else { return .failure(.tooLarge) }
        let (v, overflow) = n.multipliedReportingOverflow(by: scale)
        return overflow ? .failure(.tooLarge) : .success(v)
    }

    /// `64 MiB`, `100000 bytes`.
    package static func describe(_ bytes: Int) -> String {
        for (name, scale) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        where bytes >= scale && bytes % scale == 0 {
            return "\(bytes / scale) \(name)"
        }
        return "\(bytes) bytes"
    }
}
