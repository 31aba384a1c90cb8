import Foundation

/// Human figures: `1.23 MB`, `45.6k`.
package enum Figures {
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

    package static func count(_ v: Double) -> String {
        if v < 1000 { return v == v.rounded() ? String(Int(v)) : fixed(v, 1) }
        if v < 1_000_000 { return fixed(v / 1000, 1) + "k" }
        if v < 1_000_000_000 { return fixed(v / 1_000_000, 2) + "M" }
        return fixed(v / 1_000_000_000, 2) + "G"
    }

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
    package static func peakRSS() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let digits = line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
            return digits.map { $0 * 1024 }
        }
        return nil
    }
}
