/// Durations in scripts: `250ms`, `1s`, and (ext) `us`, `m`, `h` and decimals like `1.5s`.
package enum DurationLiteral {
    /// Each unit's spelling and length in nanoseconds.
    package static let units: [(String, Int64)] = [
        ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
    ]
    /// The units as diagnostics list them.
    package static let unitList = "us, ms, s, m or h"

    /// Why text is not a duration.
    package enum ParseError: Error, Equatable {
        /// A number without a unit, such as `250`.
        case bareNumber
        /// A unit that is not one of ``units``, such as `250sec`.
        case badUnit(String)
        /// No leading digit, a '.' without digits after it, or digits where the unit should be.
        case malformed
        /// More nanoseconds than an `Int64` holds.
        case tooLarge
    }

    /// Parses a duration token's text into nanoseconds (fractions below 1 ns are dropped).
    package static func parse(_ text: String) -> Result<Nanoseconds, ParseError> {
        let chars = Array(text.utf8)
        var i = 0
        var intPart: [UInt8] = []
        var frac: [UInt8] = []
        while i < chars.count, chars[i] >= 0x30, chars[i] <= 0x39 {
            intPart.append(chars[i])
            i += 1
        }
        if i < chars.count, chars[i] == UInt8(ascii: ".") {
            i += 1
            while i < chars.count, chars[i] >= 0x30, chars[i] <= 0x39 {
                frac.append(chars[i])
                i += 1
            }
            if frac.isEmpty { return .failure(.malformed) }
        }
        if intPart.isEmpty { return .failure(.malformed) }
        let unit = String(decoding: chars[i...], as: UTF8.self)
        if unit.isEmpty { return .failure(.bareNumber) }
        guard let scale = units.first(where: { $0.0 == unit })?.1 else {
            if unit.contains(".") || unit.first.map({ $0.isNumber }) == true { return .failure(.malformed) }
            return .failure(.badUnit(unit))
        }
        var whole: Int64 = 0
        for d in intPart {
            let (m, o1) = whole.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(d - 0x30))
            if o1 || o2 { return .failure(.tooLarge) }
            whole = a
        }
        let (ns, o) = whole.multipliedReportingOverflow(by: scale)
        if o { return .failure(.tooLarge) }
        var fracNs: Int64 = 0
        var place = scale
        for d in frac {
            place /= 10
            if place == 0 { break }
            fracNs += Int64(d - 0x30) * place
        }
        let (total, o3) = ns.addingReportingOverflow(fracNs)
        return o3 ? .failure(.tooLarge) : .success(total)
    }

    /// Formats nanoseconds for people: `0ms`, `250ms`, `1.5s`, `1m30s`, `750us`.
    package static func format(_ ns: Nanoseconds) -> String {
        if ns == 0 { return "0ms" }
        if ns % 1_000_000 != 0 {
            if ns < 1_000_000 {
                return ns % 1_000 == 0 ? "\(ns / 1_000)us" : "\(trim(Double(ns) / 1_000, 3))us"
            }
            return "\(trim(Double(ns) / 1_000_000, 3))ms"
        }
        let ms = ns / 1_000_000
        if ms < 1_000 { return "\(ms)ms" }
        if ms < 60_000 { return "\(trim(Double(ms) / 1_000, 3))s" }
        let totalS = ms / 1000
        let rem = ms % 60_000
        let mins = totalS / 60
        if mins < 60 {
            return rem == 0 ? "\(mins)m" : "\(mins)m\(trim(Double(rem) / 1_000, 3))s"
        }
        let h = mins / 60
        let m = mins % 60
        let s = ms % 60_000
        var out = "\(h)h"
        if m > 0 { out += "\(m)m" }
        if s > 0 { out += "\(trim(Double(s) / 1_000, 3))s" }
        return out
    }

    /// `v` rounded to `digits` decimals, without trailing zeros: `1.5`, `2`.
    static func trim(_ v: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (v * scale).rounded() / scale
        if r == r.rounded() { return String(Int64(r)) }
        var s = String(r)
        if s.contains("e") { s = String(Int64(r)) }
        return s
    }
}
