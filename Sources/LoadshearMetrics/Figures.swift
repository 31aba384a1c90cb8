import Foundation

/// Human figures: `1.23 MB`, `45.6k`.
package enum Figures {
    /// Bytes in decimal units: `512 B`, `1.23 kB`, `45.60 MB`, up to TB.
    package static func bytes(_ v: Double) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var x = v
        var i = 0
        while x >= 1000, i < units.count - 1 {
            x /= 1000
            i += 1
        }
        return i == 0 ? "\(Int(x)) B" : fixed(x, 2) + " " + units[i]
    }

    /// A count or rate: as it is below 1000 (one decimal when it has a fraction), then with
    /// `k`, `M` or `G`.
    package static func count(_ v: Double) -> String {
        if v < 1000 { return v == v.rounded() ? String(Int(v)) : fixed(v, 1) }
        if v < 1_000_000 { return fixed(v / 1000, 1) + "k" }
        if v < 1_000_000_000 { return fixed(v / 1_000_000, 2) + "M" }
        return fixed(v / 1_000_000_000, 2) + "G"
    }

    /// `v` with exactly `digits` decimals, rounded half away from zero: `fixed(1.5, 2)` is
    /// `1.50`. Never in exponent notation.
    package static func fixed(_ v: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (v * scale).rounded()
        let whole = Int64(r / scale)
        var frac = String(Int64(abs(r)) % Int64(scale))
        while frac.count < digits { frac = "0" + frac }
        return digits == 0 ? String(whole) : "\(r < 0 && whole == 0 ? "-" : "")\(whole).\(frac)"
    }
}

/// The process's peak resident set size, from /proc (Linux).
package enum ProcessMemory {
    /// `VmHWM` from /proc/self/status, in bytes; nil where there is no /proc.
    package static func peakRSS() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let digits = line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
            return digits.map { $0 * 1024 }
        }
        return nil
    }
}
